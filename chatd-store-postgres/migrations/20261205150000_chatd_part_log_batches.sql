-- The part log holds one row per flush instead of one per part: most of a streaming turn's
-- row writes (and deletes) were part rows (BENCHMARKS.md, capacity). `episode` and `seq` are
-- the flush's last position (the key, and what "the log's last part" reads); the arrays hold
-- every part of the flush, in order. The table is UNLOGGED and holds only the previews of
-- steps in flight, so it is recreated empty: a preview lost here is superseded by the stored
-- step, exactly as after a crash. Workers of an earlier version cannot write this table; stop
-- them before migrating.
DROP TABLE chat_stream_parts;
CREATE UNLOGGED TABLE chat_stream_parts (
    chat_id UUID NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    episode BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    episodes BIGINT[] NOT NULL,
    seqs BIGINT[] NOT NULL,
    payloads JSONB[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (chat_id, episode, seq),
    CHECK (cardinality(episodes) = cardinality(seqs)
           AND cardinality(seqs) = cardinality(payloads)
           AND cardinality(seqs) > 0)
);
