-- Usage, cost and totals (BEHAVIOUR §17): prices on model configs, one ledger record per
-- model call (kept when the chat, its messages or the config go: no foreign keys), and the
-- running totals of each chat and of each tree (on its root).

ALTER TABLE chat_model_configs ADD COLUMN prices JSONB;

ALTER TABLE chats
    ADD COLUMN spent_calls BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN spent_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN spent_micros BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN tree_spent_calls BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN tree_spent_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN tree_spent_micros BIGINT NOT NULL DEFAULT 0;

CREATE TABLE chat_usage (
    id BIGSERIAL PRIMARY KEY,
    chat_id UUID NOT NULL,
    root_chat_id UUID NOT NULL,
    owner_id UUID NOT NULL,
    model_config_id UUID NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_micros BIGINT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every report filters by one of these, then by time.
CREATE INDEX idx_chat_usage_owner ON chat_usage(owner_id, created_at);
CREATE INDEX idx_chat_usage_root ON chat_usage(root_chat_id, created_at);
CREATE INDEX idx_chat_usage_config ON chat_usage(model_config_id, created_at);
