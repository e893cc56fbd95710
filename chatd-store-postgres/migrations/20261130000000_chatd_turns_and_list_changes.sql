-- Turn endings and history rewrites for chat streams, and position-ordered chat-list changes
-- for list views that resume (`list_chat_changes`).

ALTER TABLE chats
    -- How the turn of lease_epoch ended ({"outcome": ...}); NULL while it runs.
    ADD COLUMN last_turn JSONB,
    -- The last message id when the turn of lease_epoch started: its messages follow it.
    ADD COLUMN turn_started_after BIGINT NOT NULL DEFAULT 0,
    -- Edits so far, and the id after which the latest one removed every message.
    ADD COLUMN history_version BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN rewritten_after BIGINT NOT NULL DEFAULT 0,
    -- The transaction of the last change of each list-visible kind. A change is listed only
    -- once every older transaction has ended (pg_snapshot_xmin), so positions handed to a
    -- client are never overtaken by a late commit.
    ADD COLUMN created_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN status_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN title_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN archived_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN diff_xid xid8 NOT NULL DEFAULT '0',
    ADD COLUMN change_xid xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE INDEX idx_chats_owner_change ON chats(owner_id, change_xid, id);

CREATE FUNCTION chatd_track_chat_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    now_xid xid8 := pg_current_xact_id();
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.status_xid := now_xid;
        IF NEW.status = 'running' THEN
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

CREATE TRIGGER chatd_chats_change BEFORE UPDATE ON chats FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.title IS DISTINCT FROM NEW.title
          OR OLD.archived IS DISTINCT FROM NEW.archived OR OLD.diff_xid IS DISTINCT FROM NEW.diff_xid)
    EXECUTE FUNCTION chatd_track_chat_change();

-- Deleted chats, so a list view resuming from before the deletion hears of it.
CREATE TABLE chat_tombstones (
    chat_id UUID PRIMARY KEY,
    owner_id UUID NOT NULL,
    created_xid xid8 NOT NULL,
    change_xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX idx_chat_tombstones_owner_change ON chat_tombstones(owner_id, change_xid, chat_id);

CREATE FUNCTION chatd_record_chat_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chat_tombstones (chat_id, owner_id, created_xid)
    VALUES (OLD.id, OLD.owner_id, OLD.created_xid)
    ON CONFLICT (chat_id) DO NOTHING;
    RETURN OLD;
END $$;

CREATE TRIGGER chatd_chats_deleted AFTER DELETE ON chats FOR EACH ROW
    EXECUTE FUNCTION chatd_record_chat_deletion();

-- A diff status change is a change of its chat for the list view (its timestamps alone are not).
CREATE FUNCTION chatd_track_diff_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE chats SET diff_xid = pg_current_xact_id() WHERE id = NEW.chat_id;
    RETURN NULL;
END $$;

CREATE TRIGGER chatd_diff_inserted AFTER INSERT ON chat_diff_statuses FOR EACH ROW
    EXECUTE FUNCTION chatd_track_diff_change();
CREATE TRIGGER chatd_diff_changed AFTER UPDATE ON chat_diff_statuses FOR EACH ROW
    WHEN ((OLD.url, OLD.pull_request_state, OLD.changes_requested, OLD.additions, OLD.deletions,
           OLD.changed_files, OLD.git_branch, OLD.git_remote_origin)
          IS DISTINCT FROM
          (NEW.url, NEW.pull_request_state, NEW.changes_requested, NEW.additions, NEW.deletions,
           NEW.changed_files, NEW.git_branch, NEW.git_remote_origin))
    EXECUTE FUNCTION chatd_track_diff_change();
