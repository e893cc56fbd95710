-- What the library adds to the seed: fencing, stop requests, archive, last error, the
-- durable part log, and the indexes its queries need.

ALTER TABLE chats
    ADD COLUMN archived BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN last_error TEXT,
    -- Bumped on every acquisition; every worker-side write is fenced on it.
    ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0,
    -- A person asked the running turn to stop ('interrupt' or 'pause'); only while running.
    ADD COLUMN stop_request TEXT,
    -- The queued message to promote when the running turn has stopped.
    ADD COLUMN stop_promote_id BIGINT,
    ADD CONSTRAINT chats_stop_request_check
        CHECK (stop_request IS NULL OR stop_request IN ('interrupt', 'pause'));

-- Acquisition: oldest pending first without sorting the whole backlog. The seed's
-- idx_chats_pending (on status) is kept; it cannot serve ORDER BY updated_at.
CREATE INDEX idx_chats_pending_updated_at ON chats(updated_at, id) WHERE status = 'pending';
-- Stale recovery scans only running chats.
CREATE INDEX idx_chats_running_heartbeat ON chats(heartbeat_at) WHERE status = 'running';
-- Keyset pagination of chat lists, newest first.
CREATE INDEX idx_chats_owner_created ON chats(owner_id, created_at DESC, id DESC);
CREATE INDEX idx_chats_created ON chats(created_at DESC, id DESC);

-- Messages by chat in id order (cursors, prompt tails, edits).
CREATE INDEX idx_chat_messages_chat_id_id ON chat_messages(chat_id, id);
-- The latest compaction boundary by id.
CREATE INDEX idx_chat_messages_boundary_id
    ON chat_messages(chat_id, id DESC)
    WHERE compressed = TRUE AND role = 'system' AND visibility IN ('model', 'both');
-- Uncompressed system rows, kept in every prompt.
CREATE INDEX idx_chat_messages_system
    ON chat_messages(chat_id, id)
    WHERE compressed = FALSE AND role = 'system';

-- The queue, FIFO per chat.
CREATE INDEX idx_chat_queued_messages_chat_id_id ON chat_queued_messages(chat_id, id);

-- The durable log of the step in flight: parts are written here at most every 50 ms per
-- turn and deleted when the step commits or the turn ends. UNLOGGED: losing it in a crash
-- only loses a preview that the re-run supersedes.
CREATE UNLOGGED TABLE chat_stream_parts (
    chat_id UUID NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    episode BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (chat_id, episode, seq)
);

-- The change feed's poll fallback finds chats changed since its last tick.
CREATE INDEX idx_chats_updated_at ON chats(updated_at);
