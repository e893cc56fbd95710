-- Labels and search (BEHAVIOUR §18). Labels are a JSON object of `key → value`, matched by
-- containment (`labels @> '{"k": "v"}'`) through a GIN index.
ALTER TABLE chats ADD COLUMN labels JSONB NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX idx_chats_labels ON chats USING GIN (labels jsonb_path_ops);

-- The text of a message's `text` parts, for full-text search. IMMUTABLE (it reads only its
-- argument), so indexes can use it.
CREATE FUNCTION chat_message_text(content JSONB) RETURNS TEXT
LANGUAGE SQL IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(string_agg(part->>'text', ' '), '')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(content) = 'array' THEN content ELSE '[]'::jsonb END) AS part
    WHERE part->>'type' = 'text'
$$;

-- Full-text indexes (the `simple` configuration: no language's stemming is assumed) over
-- titles and over the text of user-visible messages. Building the message index reads every
-- message once: on a large existing table, expect the migration to take a while.
CREATE INDEX idx_chats_title_search ON chats USING GIN (to_tsvector('simple', title));
CREATE INDEX idx_chat_messages_search ON chat_messages
    USING GIN (to_tsvector('simple', chat_message_text(content)))
    WHERE visibility IN ('user', 'both');
