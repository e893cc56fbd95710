-- Tombstones can be pruned (`prune_tombstones`): when each chat was deleted, and the newest
-- pruned position (change_xid, chat_id), below which a list cursor is expired (deletions
-- after it may be forgotten).

ALTER TABLE chat_tombstones ADD COLUMN deleted_at TIMESTAMPTZ NOT NULL DEFAULT now();

CREATE INDEX idx_chat_tombstones_deleted_at ON chat_tombstones(deleted_at);

CREATE TABLE chat_tombstone_horizon (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    pruned_through xid8 NOT NULL,
    pruned_chat UUID NOT NULL
);

INSERT INTO chat_tombstone_horizon (singleton, pruned_through, pruned_chat)
VALUES (TRUE, '0', '00000000-0000-0000-0000-000000000000');
