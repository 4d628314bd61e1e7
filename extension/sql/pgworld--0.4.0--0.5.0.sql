-- pgworld 0.4.0 → 0.5.0 (ALTER EXTENSION pgworld UPDATE TO '0.5.0').
-- Released scripts are never edited; the upgrade test checks that 0.1.0 plus the upgrade scripts
-- give the same catalog as a fresh 0.5.0 install.
\echo Use "ALTER EXTENSION pgworld UPDATE TO '0.5.0'" to load this file. \quit

-- The draining counts have one definition, read by versions_overview and version_status().
CREATE FUNCTION _version_work(app integer, version text,
                              OUT active_runs bigint, OUT pending_hooks bigint,
                              OUT pending_waits bigint, OUT queued_messages bigint)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  WITH active AS (SELECT r.run_id FROM workflow.runs r
                   WHERE r.application_id = app AND r.deployment_id = version AND r.status IN ('pending', 'running'))
  SELECT (SELECT count(*) FROM active),
         (SELECT count(*) FROM active a JOIN workflow.hooks h
            ON h.application_id = app AND h.run_id = a.run_id AND h.status <> 'disposed'),
         (SELECT count(*) FROM active a JOIN workflow.waits w
            ON w.application_id = app AND w.run_id = a.run_id AND w.status = 'waiting'),
         (SELECT count(*) FROM workflow.messages m
           WHERE m.application_id = app AND m.deployment_version = version
             AND m.state IN ('pending', 'deferred', 'retrying', 'leased'))
$$;
REVOKE ALL ON FUNCTION _version_work(integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _version_work(integer, text) TO pgworld_owner;

CREATE OR REPLACE VIEW versions_overview AS
WITH versions AS (
       SELECT application_id, deployment_id AS version FROM workflow.runs
        UNION SELECT application_id, deployment_version FROM workflow.handlers
        UNION SELECT application_id, deployment_version FROM workflow.messages WHERE deployment_version <> ''
        UNION SELECT application_id, deployment_id FROM workflow.deployment_versions)
SELECT v.version,
       coalesce(d.status, 'active') AS status,
       work.active_runs,
       work.pending_hooks,
       work.pending_waits,
       work.queued_messages,
       (SELECT count(*) FROM workflow.messages m
         WHERE m.application_id = v.application_id AND m.deployment_version = v.version AND m.state = 'dead') AS dead_messages,
       (SELECT count(*) FROM workflow.handlers h
         WHERE h.application_id = v.application_id AND h.deployment_version = v.version) AS pods
  FROM versions v
  LEFT JOIN workflow.deployment_versions d ON d.application_id = v.application_id AND d.deployment_id = v.version
  CROSS JOIN LATERAL workflow._version_work(v.application_id, v.version) work;

-- The wrappers and grants now follow from one declaration (pgworld_core::api); the retention
-- functions' grants moved with them, after ownership is settled, as a fresh install has them.
REVOKE EXECUTE ON FUNCTION retention_get(), retention_put(jsonb) FROM pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION retention_get() TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION retention_put(jsonb) TO pgworld_service, pgworld_admin;

-- The Rust functions take their arguments under the names the public functions give them.
-- PostgreSQL cannot rename a function's parameters in place, so these four are made again.
DROP FUNCTION _app_role_grant(text, text);
CREATE FUNCTION _app_role_grant(
    app_label text,
    role_name text
) RETURNS jsonb
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'app_role_grant_wrapper';
DROP FUNCTION _app_role_revoke(text);
CREATE FUNCTION _app_role_revoke(
    role_name text
) RETURNS jsonb
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'app_role_revoke_wrapper';
DROP FUNCTION _stream_chunks(text, text, text);
CREATE FUNCTION _stream_chunks(
    run_id text,
    name text,
    query text
) RETURNS jsonb
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'stream_chunks_wrapper';
DROP FUNCTION _stream_info(text, text);
CREATE FUNCTION _stream_info(
    run_id text,
    name text
) RETURNS jsonb
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'stream_info_wrapper';
REVOKE ALL ON FUNCTION _app_role_grant(text, text), _app_role_revoke(text), _stream_chunks(text, text, text),
  _stream_info(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _app_role_grant(text, text), _app_role_revoke(text), _stream_chunks(text, text, text),
  _stream_info(text, text) TO pgworld_owner;
