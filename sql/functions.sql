-- Generated from pgworld_core::api (core/src/api.rs) by its tests; edit the declaration, then
-- PGWORLD_BLESS=1 cargo test -p pgworld-core api. One public function per Rust `_name` function.
-- They are plpgsql, not SQL-language, because plpgsql keeps its plans for the session while a
-- non-inlinable SQL function is re-planned on every call. Privileges: sql/api.sql.

CREATE FUNCTION app_provision(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_provision(body::text)); END $$;

CREATE FUNCTION app_role_grant(app_label text, role_name text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_role_grant(app_label, role_name)); END $$;

CREATE FUNCTION app_role_revoke(role_name text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_role_revoke(role_name)); END $$;

CREATE FUNCTION app_token_create(app_label text, body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_token_create(app_label, body::text)); END $$;

CREATE FUNCTION app_tokens_list(app_label text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_tokens_list(app_label)); END $$;

CREATE FUNCTION app_token_revoke(app_label text, token_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_token_revoke(app_label, token_id)); END $$;

CREATE FUNCTION admin_token_create(body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._admin_token_create(body::text)); END $$;

CREATE FUNCTION token_identity(token text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._token_identity(token); END $$;

CREATE FUNCTION k8s_binding_add(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._k8s_binding_add(body::text)); END $$;

CREATE FUNCTION k8s_binding_remove(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._k8s_binding_remove(body::text)); END $$;

CREATE FUNCTION app_secret_import(app_label text, secret bytea) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_secret_import(app_label, secret)); END $$;

CREATE FUNCTION app_secret_remove(app_label text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_secret_remove(app_label)); END $$;

CREATE FUNCTION k8s_identity(namespace text, service_account text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._k8s_identity(namespace, service_account); END $$;

CREATE FUNCTION app_exists(app_label text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._app_exists(app_label); END $$;

CREATE FUNCTION event_create(run_id text, query jsonb DEFAULT '{}', body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._event_create(run_id, query::text, body::text)); END $$;

CREATE FUNCTION events_list(run_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._events_list(run_id, query::text)); END $$;

CREATE FUNCTION event_get(run_id text, event_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._event_get(run_id, event_id, query::text)); END $$;

CREATE FUNCTION events_by_correlation(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._events_by_correlation(query::text)); END $$;

CREATE FUNCTION run_get(run_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_get(run_id, query::text)); END $$;

CREATE FUNCTION runs_list(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._runs_list(query::text)); END $$;

CREATE FUNCTION run_replay(run_id text, body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_replay(run_id, body::text)); END $$;

CREATE FUNCTION run_cancel(run_id text, body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_cancel(run_id, body::text)); END $$;

CREATE FUNCTION run_wake_up(run_id text, body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_wake_up(run_id, body::text)); END $$;

CREATE FUNCTION workflow_template(workflow_name text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._workflow_template(workflow_name, query::text)); END $$;

CREATE FUNCTION step_get(run_id text, step_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._step_get(run_id, step_id, query::text)); END $$;

CREATE FUNCTION steps_list(run_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._steps_list(run_id, query::text)); END $$;

CREATE FUNCTION hook_get_by_token(token text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._hook_get_by_token(token, query::text)); END $$;

CREATE FUNCTION hook_get(hook_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._hook_get(hook_id, query::text)); END $$;

CREATE FUNCTION hooks_list(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._hooks_list(query::text)); END $$;

CREATE FUNCTION start(workflow_name text, input jsonb DEFAULT '[]', options jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._start(workflow_name, input::text, options::text)); END $$;

CREATE FUNCTION hook_resume(token text, payload jsonb DEFAULT 'null') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._hook_resume(token, payload::text)); END $$;

CREATE FUNCTION run_output(run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_output(run_id)); END $$;

CREATE FUNCTION stream_put(run_id text, name text, query jsonb, body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._stream_put(run_id, name, query::text, body::text)); END $$;

CREATE FUNCTION stream_put_bytes(run_id text, name text, query jsonb, body bytea) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._stream_put_bytes(run_id, name, query::text, body)); END $$;

CREATE FUNCTION stream_state(name text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._stream_state(name)); END $$;

CREATE FUNCTION stream_read(name text, from_index bigint, max_chunks integer DEFAULT 1000)
RETURNS TABLE (idx bigint, data bytea)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._ok(workflow._stream_state(name));  -- raises WF401/WF403 for a caller without an app
  RETURN QUERY SELECT * FROM workflow._stream_read(name, from_index, max_chunks);
END
$$;

CREATE FUNCTION streams_list(run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._streams_list(run_id)); END $$;

CREATE FUNCTION stream_chunks(run_id text, name text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._stream_chunks(run_id, name, query::text)); END $$;

CREATE FUNCTION stream_info(run_id text, name text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._stream_info(run_id, name)); END $$;

CREATE FUNCTION queue_enqueue(query jsonb DEFAULT '{}', body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._queue_enqueue(query::text, body::text)); END $$;

CREATE FUNCTION queue_enqueue_cbor(query jsonb, body bytea) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._queue_enqueue_cbor(query::text, body)); END $$;

CREATE FUNCTION handler_register(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._handler_register(body::text)); END $$;

CREATE FUNCTION handler_deregister(pod_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._handler_deregister(pod_id)); END $$;

CREATE FUNCTION encryption_key(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._encryption_key(query::text)); END $$;

CREATE FUNCTION dead_letters_list(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._dead_letters_list(query::text)); END $$;

CREATE FUNCTION dead_letter_retry(message_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._dead_letter_retry(message_id)); END $$;

CREATE FUNCTION version_status(deployment_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._version_status(deployment_id)); END $$;

CREATE FUNCTION version_expire(deployment_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._version_expire(deployment_id)); END $$;

CREATE FUNCTION version_notify(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._version_notify(body::text)); END $$;

CREATE FUNCTION quotas_get() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._quotas_get()); END $$;

CREATE FUNCTION quotas_put(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._quotas_put(body::text)); END $$;

CREATE FUNCTION retention_get() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._retention_get()); END $$;

CREATE FUNCTION retention_put(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._retention_put(body::text)); END $$;

CREATE FUNCTION dispatch_claim(owner text, max integer DEFAULT 100, lease_seconds double precision DEFAULT 60)
RETURNS TABLE (lease_id uuid, id bigint, queue_name text, kind text, url text, encoding text, body_json jsonb, body_cbor bytea, headers jsonb, attempts integer, deployment_version text, application_id integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN QUERY SELECT * FROM workflow._dispatch_claim(owner, max, lease_seconds); END $$;

CREATE FUNCTION dispatch_renew(lease_ids uuid[], lease_seconds double precision DEFAULT 60) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._dispatch_renew(lease_ids, lease_seconds); END $$;

CREATE FUNCTION dispatch_complete(lease_id uuid, outcome jsonb) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._dispatch_complete(lease_id, outcome::text))::boolean; END $$;

CREATE FUNCTION dispatch_delivered(lease_ids uuid[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._dispatch_delivered(lease_ids); END $$;

CREATE FUNCTION dispatch_next_due() RETURNS timestamptz
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._dispatch_next_due(); END $$;

CREATE FUNCTION maint_run() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._maint_run(); END $$;

CREATE FUNCTION metrics() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._metrics(); END $$;

CREATE FUNCTION maint_reap_orphans("limit" integer DEFAULT 100) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._maint_reap_orphans("limit"); END $$;
