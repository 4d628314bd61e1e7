-- pgworld 0.3.0 → 0.4.0 (ALTER EXTENSION pgworld UPDATE TO '0.4.0').
-- Released scripts are never edited; the upgrade test checks that 0.1.0 plus the upgrade scripts
-- give the same catalog as a fresh 0.4.0 install.
\echo Use "ALTER EXTENSION pgworld UPDATE TO '0.4.0'" to load this file. \quit

-- Claims keep a floor in claim order and look below it only for messages made due by
-- transactions their snapshot did not see, so an old snapshot (a long report, an idle psql
-- transaction) no longer makes every claim walk the queue's dead row versions. Existing rows
-- keep 0: the first claim of every backend scans from the start.
ALTER TABLE messages ADD COLUMN ready_xid bigint NOT NULL DEFAULT 0;
CREATE INDEX messages_ready_xid_idx ON messages (application_id, deployment_version, ready_xid)
    WHERE state IN ('pending', 'deferred', 'retrying');
CREATE FUNCTION _messages_mark_ready() RETURNS trigger
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.ready_xid := pg_current_xact_id()::text::bigint; RETURN NEW; END $$;
CREATE TRIGGER messages_ready BEFORE INSERT OR UPDATE OF state, available_at ON messages
    FOR EACH ROW WHEN (NEW.state IN ('pending', 'deferred', 'retrying')) EXECUTE FUNCTION _messages_mark_ready();
REVOKE ALL ON FUNCTION _messages_mark_ready() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _messages_mark_ready() TO pgworld_owner;
