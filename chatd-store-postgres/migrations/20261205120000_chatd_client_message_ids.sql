-- Client message ids (BEHAVIOUR §1): the id the sending client knows a user message by (an
-- AI SDK `UIMessage` id, say), kept while the message waits in the queue and after it enters
-- the history. NULL for messages sent without one.

ALTER TABLE chat_messages ADD COLUMN client_id TEXT;
ALTER TABLE chat_queued_messages ADD COLUMN client_id TEXT;
