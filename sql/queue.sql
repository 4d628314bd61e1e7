-- pgworld queue API (0.2.0) (queue.md, lifecycle.md): the public functions over the Rust ones.
-- Privileges and ownership are set in api.sql, which runs last.

CREATE FUNCTION queue_enqueue(query jsonb DEFAULT '{}', body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._queue_enqueue(query::text, body::text)); END $$;

CREATE FUNCTION queue_enqueue_cbor(query jsonb, body bytea) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._queue_enqueue_cbor(query::text, body)); END $$;

CREATE FUNCTION dead_letters_list(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._dead_letters_list(query::text)); END $$;

CREATE FUNCTION dead_letter_retry(message_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._dead_letter_retry(message_id)); END $$;

CREATE FUNCTION handler_register(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._handler_register(body::text)); END $$;

CREATE FUNCTION handler_deregister(pod_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._handler_deregister(pod_id)); END $$;

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

-- Dispatcher-only (pgworld_service): they act across apps.
CREATE FUNCTION dispatch_claim(owner text, max integer DEFAULT 100, lease_seconds double precision DEFAULT 60)
RETURNS TABLE (lease_id uuid, id bigint, queue_name text, kind text, url text, encoding text, body_json jsonb,
               body_cbor bytea, headers jsonb, attempts integer, deployment_version text, application_id integer)
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

-- Runs, keys, bindings and streams (http-api.md §4.2, §4.4, §4.7, §4.10).
CREATE FUNCTION run_cancel(run_id text, body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_cancel(run_id, body::text)); END $$;

CREATE FUNCTION run_wake_up(run_id text, body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_wake_up(run_id, body::text)); END $$;

CREATE FUNCTION run_replay(run_id text, body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_replay(run_id, body::text)); END $$;

CREATE FUNCTION workflow_template(workflow_name text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._workflow_template(workflow_name, query::text)); END $$;

CREATE FUNCTION encryption_key(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._encryption_key(query::text)); END $$;

CREATE FUNCTION app_secret_import(app_label text, secret bytea) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_secret_import(app_label, secret)); END $$;

CREATE FUNCTION app_secret_remove(app_label text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_secret_remove(app_label)); END $$;

CREATE FUNCTION k8s_binding_add(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._k8s_binding_add(body::text)); END $$;

CREATE FUNCTION k8s_binding_remove(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._k8s_binding_remove(body::text)); END $$;

-- The façade's auth lookups (service only): apps bound to a service account, and app existence.
CREATE FUNCTION k8s_identity(namespace text, service_account text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._k8s_identity(namespace, service_account); END $$;

CREATE FUNCTION app_exists(app_label text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._app_exists(app_label); END $$;

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

CREATE FUNCTION stream_info(run_id text, name text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._stream_info(run_id, name)); END $$;

CREATE FUNCTION stream_chunks(run_id text, name text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._stream_chunks(run_id, name, query::text)); END $$;
