-- Durable tool calls (BEHAVIOUR §16): the status a chat waits in for a person's decision or a
-- client's result, the records of its unfinished step's calls, and the earliest deadline
-- among its open calls (what the deadline sweep looks up; NULL when none is open).
--
-- The new enum value is not used in this migration: PostgreSQL refuses a value added in the
-- same transaction.

ALTER TYPE chat_status ADD VALUE IF NOT EXISTS 'requires_action';

ALTER TABLE chats
    ADD COLUMN tool_calls JSONB NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN action_deadline TIMESTAMPTZ;

CREATE INDEX idx_chats_action_deadline ON chats(action_deadline)
    WHERE action_deadline IS NOT NULL;
