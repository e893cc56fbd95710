-- The host has a table of its own called "chats" too (chatd's goes into its schema).
CREATE TABLE IF NOT EXISTS host_notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL);
