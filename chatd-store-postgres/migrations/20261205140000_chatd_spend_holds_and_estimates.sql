-- Spend holds (BEHAVIOUR §17): while a model call is in flight it holds an upper bound of its
-- cost against its owner's limits, so that calls admitted on other workers see it. A chat
-- holds at most one; a hold counts only while its chat runs under the lease that took it, and
-- the step's usage record settles it. No foreign key: a hold outlives nothing it counts for.
CREATE TABLE chat_spend_holds (
    chat_id UUID PRIMARY KEY,
    owner_id UUID NOT NULL,
    root_chat_id UUID NOT NULL,
    worker_id UUID NOT NULL,
    lease_epoch BIGINT NOT NULL,
    cost_micros BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_chat_spend_holds_owner ON chat_spend_holds(owner_id);

-- A call cut before its provider reported usage is recorded with the runtime's estimate,
-- marked as such.
ALTER TABLE chat_usage ADD COLUMN estimated BOOLEAN NOT NULL DEFAULT false;
