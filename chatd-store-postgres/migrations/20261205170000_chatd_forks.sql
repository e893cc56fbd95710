-- Forks (BEHAVIOUR §18): where a chat's history was copied from. No foreign key: the source
-- may be deleted, and the fork keeps its own copy.
ALTER TABLE chats
    ADD COLUMN forked_from_chat_id UUID,
    ADD COLUMN forked_from_message_id BIGINT;
