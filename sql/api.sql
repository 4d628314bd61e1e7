-- pgworld API (0.3.0): row-level security, the public functions and their privileges.
-- Loaded last (finalize), after the Rust functions it wraps exist.

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

-- One public function per route (http-api.md §3). Each runs as pgworld_owner, so its queries
-- are subject to the policies above, and raises WFnnn errors through _ok. They are plpgsql, not
-- SQL-language, because plpgsql keeps its plans for the session while a non-inlinable SQL
-- function is re-planned on every call.
CREATE FUNCTION event_create(run_id text, query jsonb DEFAULT '{}', body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._event_create(run_id, query::text, body::text)); END $$;

CREATE FUNCTION event_get(run_id text, event_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._event_get(run_id, event_id, query::text)); END $$;

CREATE FUNCTION events_list(run_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._events_list(run_id, query::text)); END $$;

CREATE FUNCTION events_by_correlation(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._events_by_correlation(query::text)); END $$;

CREATE FUNCTION run_get(run_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_get(run_id, query::text)); END $$;

CREATE FUNCTION runs_list(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._runs_list(query::text)); END $$;

CREATE FUNCTION step_get(run_id text, step_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._step_get(run_id, step_id, query::text)); END $$;

CREATE FUNCTION steps_list(run_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._steps_list(run_id, query::text)); END $$;

CREATE FUNCTION hook_get(hook_id text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._hook_get(hook_id, query::text)); END $$;

CREATE FUNCTION hook_get_by_token(token text, query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._hook_get_by_token(token, query::text)); END $$;

CREATE FUNCTION hooks_list(query jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._hooks_list(query::text)); END $$;

CREATE FUNCTION app_provision(body jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_provision(body::text)); END $$;

CREATE FUNCTION app_role_grant(app_label text, role_name text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_role_grant(app_label, role_name)); END $$;

CREATE FUNCTION app_role_revoke(role_name text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_role_revoke(role_name)); END $$;

-- Workflows from SQL, in the caller's transaction: start one, resume a hook, read an outcome.
CREATE FUNCTION start(workflow_name text, input jsonb DEFAULT '[]', options jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._start(workflow_name, input::text, options::text)); END $$;

CREATE FUNCTION hook_resume(token text, payload jsonb DEFAULT 'null') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._hook_resume(token, payload::text)); END $$;

CREATE FUNCTION run_output(run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_output(run_id)); END $$;

-- API tokens (token mode of the façade). An admin token is minted only by pgworld_admin.
CREATE FUNCTION app_token_create(app_label text, body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_token_create(app_label, body::text)); END $$;

CREATE FUNCTION admin_token_create(body jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._admin_token_create(body::text)); END $$;

CREATE FUNCTION app_token_revoke(app_label text, token_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_token_revoke(app_label, token_id)); END $$;

CREATE FUNCTION app_tokens_list(app_label text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._app_tokens_list(app_label)); END $$;

CREATE FUNCTION token_identity(token text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._token_identity(token); END $$;

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

GRANT EXECUTE ON FUNCTION
  event_create(text, jsonb, jsonb), event_get(text, text, jsonb), events_list(text, jsonb),
  events_by_correlation(jsonb), run_get(text, jsonb), runs_list(jsonb), step_get(text, text, jsonb),
  steps_list(text, jsonb), hook_get(text, jsonb), hook_get_by_token(text, jsonb), hooks_list(jsonb)
TO pgworld_service, pgworld_client;
GRANT EXECUTE ON FUNCTION app_provision(jsonb), app_role_grant(text, text), app_role_revoke(text),
  app_token_create(text, jsonb), app_token_revoke(text, text), app_tokens_list(text)
TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION admin_token_create(jsonb) TO pgworld_admin;
GRANT EXECUTE ON FUNCTION
  queue_enqueue(jsonb, jsonb), queue_enqueue_cbor(jsonb, bytea), dead_letters_list(jsonb), dead_letter_retry(text),
  handler_register(jsonb), handler_deregister(text),
  run_cancel(text, jsonb), run_wake_up(text, jsonb), run_replay(text, jsonb), workflow_template(text, jsonb),
  encryption_key(jsonb), stream_put(text, text, jsonb, jsonb), stream_put_bytes(text, text, jsonb, bytea),
  stream_state(text), stream_read(text, bigint, integer), streams_list(text), stream_info(text, text),
  stream_chunks(text, text, jsonb), start(text, jsonb, jsonb), hook_resume(text, jsonb), run_output(text)
TO pgworld_service, pgworld_client;
-- Admin routes: the functions check the admin identity themselves (workflow.admin for the service).
GRANT EXECUTE ON FUNCTION version_status(text), version_expire(text), version_notify(jsonb), quotas_get(), quotas_put(jsonb),
  k8s_binding_add(jsonb), k8s_binding_remove(jsonb), app_secret_import(text, bytea), app_secret_remove(text)
TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION
  dispatch_claim(text, integer, double precision), dispatch_renew(uuid[], double precision), dispatch_complete(uuid, jsonb),
  dispatch_delivered(uuid[]), dispatch_next_due(), maint_run(), maint_reap_orphans(integer),
  k8s_identity(text, text), app_exists(text), metrics(), token_identity(text)
TO pgworld_service;

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
