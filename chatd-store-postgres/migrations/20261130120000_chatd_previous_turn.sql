-- The ending of the turn before the one of lease_epoch, so a follower that saw that turn
-- start hears it end even when the next turn began before it read again (acquiring clears
-- last_turn).

ALTER TABLE chats
    ADD COLUMN previous_turn JSONB,
    ADD COLUMN previous_turn_started_after BIGINT NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION chatd_track_chat_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    now_xid xid8 := pg_current_xact_id();
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.status_xid := now_xid;
        IF NEW.status = 'running' THEN
            NEW.previous_turn := OLD.last_turn;
            NEW.previous_turn_started_after := OLD.turn_started_after;
            NEW.last_turn := NULL;
        ELSIF OLD.status = 'running' AND NEW.last_turn IS NULL THEN
            -- Ended without its worker's word (an edit): a person stopped it.
            NEW.last_turn := '{"outcome": "interrupted"}';
        END IF;
    END IF;
    IF NEW.title IS DISTINCT FROM OLD.title THEN
        NEW.title_xid := now_xid;
    END IF;
    IF NEW.archived IS DISTINCT FROM OLD.archived THEN
        NEW.archived_xid := now_xid;
    END IF;
    NEW.change_xid := now_xid;
    RETURN NEW;
END $$;
