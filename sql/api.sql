-- pgworld API: row-level security and the privileges of every function. Loaded last
-- (finalize), after the Rust functions and their wrappers (sql/functions.sql) exist.

-- Raises an error envelope {"$error": {sqlstate, message, detail, hint}} produced by the Rust
-- side as the WFnnn SQLSTATE it names (pgrx can only raise PostgreSQL's built-in codes).
CREATE FUNCTION _ok(result jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  e jsonb := result -> '$error';
BEGIN
  IF e IS NULL THEN
    RETURN result;
  ELSIF e ->> 'detail' IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = e ->> 'sqlstate', MESSAGE = e ->> 'message', HINT = e ->> 'hint';
  ELSE
    RAISE EXCEPTION USING ERRCODE = e ->> 'sqlstate', MESSAGE = e ->> 'message',
                          DETAIL = e ->> 'detail', HINT = e ->> 'hint';
  END IF;
END
$$;

-- Row-level security: every tenant table shows only the current app's rows. Cross-app work
-- (provisioning, maintenance) is switched on in backend memory by the Rust code only.
DO $rls$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['app_secrets', 'quotas', 'run_counters', 'deployment_versions',
                           'runs', 'events', 'steps', 'hooks', 'waits', 'handlers',
                           'messages', 'message_bodies', 'queue_rate', 'streams', 'stream_chunks',
                           'k8s_bindings', 'app_tokens'] LOOP
    EXECUTE format('ALTER TABLE workflow.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE workflow.%I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON workflow.%I
                      USING (application_id = workflow.current_app_id() OR workflow._cross_app())
                      WITH CHECK (application_id = workflow.current_app_id() OR workflow._cross_app())', t);
  END LOOP;
END
$rls$;

-- Ownership and privileges: nobody gets table access; everything goes through the functions.
GRANT USAGE ON SCHEMA workflow TO pgworld_owner, pgworld_service, pgworld_client, pgworld_admin;
REVOKE ALL ON ALL TABLES IN SCHEMA workflow FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA workflow FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA workflow TO pgworld_owner;
-- The policies call these for whichever role reads a table; both only report the caller's own
-- situation (its app, and whether this backend is inside cross-app maintenance).
GRANT EXECUTE ON FUNCTION current_app_id(), _cross_app() TO PUBLIC;
DO $own$
DECLARE
  obj text;
BEGIN
  FOR obj IN SELECT c.oid::regclass::text FROM pg_class c
             WHERE c.relnamespace = 'workflow'::regnamespace AND c.relkind = 'r' LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO pgworld_owner', obj);
  END LOOP;
  FOR obj IN SELECT p.oid::regprocedure::text FROM pg_proc p
             WHERE p.pronamespace = 'workflow'::regnamespace AND p.prosecdef LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO pgworld_owner', obj);
  END LOOP;
END
$own$;

-- Each public function's callers, from its declaration (core/src/api.rs).
-- BEGIN GENERATED GRANTS (pgworld_core::api; PGWORLD_BLESS=1 cargo test -p pgworld-core api)
GRANT EXECUTE ON FUNCTION app_provision(jsonb) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION app_role_grant(text, text) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION app_role_revoke(text) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION app_token_create(text, jsonb) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION app_tokens_list(text) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION app_token_revoke(text, text) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION admin_token_create(jsonb) TO pgworld_admin;
GRANT EXECUTE ON FUNCTION token_identity(text) TO pgworld_service;
GRANT EXECUTE ON FUNCTION k8s_binding_add(jsonb) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION k8s_binding_remove(jsonb) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION app_secret_import(text, bytea) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION app_secret_remove(text) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION k8s_identity(text, text) TO pgworld_service;
GRANT EXECUTE ON FUNCTION app_exists(text) TO pgworld_service;
GRANT EXECUTE ON FUNCTION event_create(text, jsonb, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION events_list(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION event_get(text, text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION events_by_correlation(jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION run_get(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION runs_list(jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION run_replay(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION run_cancel(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION run_wake_up(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION workflow_template(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION step_get(text, text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION steps_list(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION hook_get_by_token(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION hook_get(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION hooks_list(jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION start(text, jsonb, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION hook_resume(text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION run_output(text) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION stream_put(text, text, jsonb, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION stream_put_bytes(text, text, jsonb, bytea) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION stream_state(text) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION stream_read(text, bigint, integer) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION streams_list(text) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION stream_chunks(text, text, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION stream_info(text, text) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION queue_enqueue(jsonb, jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION queue_enqueue_cbor(jsonb, bytea) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION handler_register(jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION handler_deregister(text) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION encryption_key(jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION dead_letters_list(jsonb) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION dead_letter_retry(text) TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION version_status(text) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION version_expire(text) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION version_notify(jsonb) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION quotas_get() TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION quotas_put(jsonb) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION retention_get() TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION retention_put(jsonb) TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION dispatch_claim(text, integer, double precision) TO pgworld_service;
GRANT EXECUTE ON FUNCTION dispatch_renew(uuid[], double precision) TO pgworld_service;
GRANT EXECUTE ON FUNCTION dispatch_complete(uuid, jsonb) TO pgworld_service;
GRANT EXECUTE ON FUNCTION dispatch_delivered(uuid[]) TO pgworld_service;
GRANT EXECUTE ON FUNCTION dispatch_next_due() TO pgworld_service;
GRANT EXECUTE ON FUNCTION maint_run() TO pgworld_service;
GRANT EXECUTE ON FUNCTION metrics() TO pgworld_service;
GRANT EXECUTE ON FUNCTION maint_reap_orphans(integer) TO pgworld_service;
-- END GENERATED GRANTS

-- Logical backups (0.3.0): pg_dump and pg_restore carry every tenant row, secrets byte for byte,
-- and the identity counters, so a restored database goes on where the dump left off. This is why
-- the install script creates no app: a restore's CREATE EXTENSION must leave nothing for the
-- dumped rows to collide with (the dispatcher provisions its single-tenant app itself).
-- notify_gate is left out on purpose: a restored database makes its own.
DO $dump$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['applications', 'app_secrets', 'app_roles', 'quotas', 'run_counters',
                           'deployment_versions', 'runs', 'events', 'steps', 'hooks', 'waits',
                           'handlers', 'messages', 'message_bodies', 'queue_rate', 'streams',
                           'stream_chunks', 'k8s_bindings', 'app_tokens'] LOOP
    PERFORM pg_catalog.pg_extension_config_dump(format('workflow.%I', t)::regclass, '');
  END LOOP;
  FOR t IN SELECT pg_catalog.pg_get_serial_sequence(format('workflow.%I', c.relname), a.attname)
             FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'workflow'::regnamespace AND a.attidentity <> '' ORDER BY 1 LOOP
    PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
  END LOOP;
END
$dump$;
