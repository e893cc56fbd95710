-- History you keep (BEHAVIOUR §18): an edit moves the messages after the edited one, and the
-- edited message's replaced content, here instead of deleting them. Every read of the history
-- as it stands reads `chat_messages` alone, untouched; reads that ask for deleted messages
-- read the view below. `revision` is the chat's history version while the row was part of
-- the history; an edited message's earlier contents share its id, one row per revision.
CREATE TABLE chat_deleted_messages (
    id BIGINT NOT NULL,
    chat_id UUID NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    model_config_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    role TEXT NOT NULL,
    content JSONB,
    visibility chat_message_visibility NOT NULL,
    input_tokens BIGINT,
    output_tokens BIGINT,
    total_tokens BIGINT,
    reasoning_tokens BIGINT,
    cache_creation_tokens BIGINT,
    cache_read_tokens BIGINT,
    context_limit BIGINT,
    compressed BOOLEAN NOT NULL,
    client_id TEXT,
    revision BIGINT NOT NULL,
    deleted_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (id, revision)
);
CREATE INDEX idx_chat_deleted_messages_chat_id ON chat_deleted_messages(chat_id, id);
-- Retention purges revisions by age.
CREATE INDEX idx_chat_deleted_messages_deleted_at ON chat_deleted_messages(deleted_at);

CREATE VIEW chat_messages_with_deleted AS
    SELECT id, chat_id, model_config_id, created_at, role, content, visibility, input_tokens,
           output_tokens, total_tokens, reasoning_tokens, cache_creation_tokens,
           cache_read_tokens, context_limit, compressed, client_id,
           NULL::BIGINT AS revision, NULL::TIMESTAMPTZ AS deleted_at
    FROM chat_messages
    UNION ALL
    SELECT id, chat_id, model_config_id, created_at, role, content, visibility, input_tokens,
           output_tokens, total_tokens, reasoning_tokens, cache_creation_tokens,
           cache_read_tokens, context_limit, compressed, client_id, revision, deleted_at
    FROM chat_deleted_messages;
