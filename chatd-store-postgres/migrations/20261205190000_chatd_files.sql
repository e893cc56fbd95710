-- Attachments (BEHAVIOUR §19): each file stored once, referenced from message parts by id.
-- A file is unbound (chat_id NULL) from its upload until a message first refers to it; a
-- bound file goes with its chat. Images and PDFs are compressed already: the bytes are kept
-- out of line without another compression attempt.
CREATE TABLE chat_files (
    id UUID PRIMARY KEY,
    owner_id UUID NOT NULL,
    chat_id UUID REFERENCES chats(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL CHECK (size > 0),
    data BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE chat_files ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX idx_chat_files_chat ON chat_files (chat_id, created_at) WHERE chat_id IS NOT NULL;
CREATE INDEX idx_chat_files_unbound ON chat_files (created_at) WHERE chat_id IS NULL;
