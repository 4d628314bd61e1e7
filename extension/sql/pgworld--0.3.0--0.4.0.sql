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

-- API tokens for the façade outside Kubernetes: pgw_<token_id>_<secret>, stored as SHA-256 of
-- the secret only. application_id NULL: an admin token. Revoked tokens stay listed.
CREATE TABLE app_tokens (
    token_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id integer REFERENCES applications,
    label          text NOT NULL DEFAULT '',
    secret_hash    bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE INDEX app_tokens_app_idx ON app_tokens (application_id);
ALTER TABLE app_tokens OWNER TO pgworld_owner;
REVOKE ALL ON app_tokens FROM PUBLIC;
ALTER TABLE app_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE app_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON app_tokens
    USING (application_id = workflow.current_app_id() OR workflow._cross_app())
    WITH CHECK (application_id = workflow.current_app_id() OR workflow._cross_app());
SELECT pg_catalog.pg_extension_config_dump('workflow.app_tokens', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('workflow.app_tokens', 'token_id')::regclass, '');

CREATE FUNCTION "_admin_token_create"(
	"body" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'admin_token_create_wrapper';

CREATE FUNCTION "_app_token_create"(
	"app_label" TEXT, /* Option < & str > */
	"body" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'app_token_create_wrapper';

CREATE FUNCTION "_app_token_revoke"(
	"app_label" TEXT, /* Option < & str > */
	"token_id" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'app_token_revoke_wrapper';

CREATE FUNCTION "_app_tokens_list"(
	"app_label" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'app_tokens_list_wrapper';

CREATE FUNCTION "_token_identity"(
	"token" TEXT /* & str */
) RETURNS jsonb /* Option < JsonB > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'token_identity_wrapper';

-- The public functions (as api.sql defines them). An admin token is minted only by pgworld_admin.
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

REVOKE ALL ON FUNCTION "_admin_token_create"(text), "_app_token_create"(text, text), "_app_token_revoke"(text, text),
  "_app_tokens_list"(text), "_token_identity"(text), app_token_create(text, jsonb), admin_token_create(jsonb),
  app_token_revoke(text, text), app_tokens_list(text), token_identity(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "_admin_token_create"(text), "_app_token_create"(text, text), "_app_token_revoke"(text, text),
  "_app_tokens_list"(text), "_token_identity"(text), app_token_create(text, jsonb), admin_token_create(jsonb),
  app_token_revoke(text, text), app_tokens_list(text), token_identity(text) TO pgworld_owner;
ALTER FUNCTION app_token_create(text, jsonb) OWNER TO pgworld_owner;
ALTER FUNCTION admin_token_create(jsonb) OWNER TO pgworld_owner;
ALTER FUNCTION app_token_revoke(text, text) OWNER TO pgworld_owner;
ALTER FUNCTION app_tokens_list(text) OWNER TO pgworld_owner;
ALTER FUNCTION token_identity(text) OWNER TO pgworld_owner;
GRANT EXECUTE ON FUNCTION app_token_create(text, jsonb), app_token_revoke(text, text), app_tokens_list(text)
TO pgworld_service, pgworld_admin;
GRANT EXECUTE ON FUNCTION admin_token_create(jsonb) TO pgworld_admin;
GRANT EXECUTE ON FUNCTION token_identity(text) TO pgworld_service;

-- What a deployment's pods run, when they say so at registration: workflow.start writes what
-- they read.
ALTER TABLE handlers ADD COLUMN spec_version integer;
ALTER TABLE handlers ADD COLUMN core_version text;

-- Workflows from SQL, in the caller's transaction: start one, resume a hook, read an outcome.
CREATE FUNCTION "_start"(
	"workflow_name" TEXT, /* Option < & str > */
	"input" TEXT, /* Option < & str > */
	"options" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'start_wrapper';

CREATE FUNCTION "_hook_resume"(
	"token" TEXT, /* Option < & str > */
	"payload" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'hook_resume_wrapper';

CREATE FUNCTION "_run_output"(
	"run_id" TEXT /* Option < & str > */
) RETURNS jsonb /* JsonB */
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'run_output_wrapper';

CREATE FUNCTION start(workflow_name text, input jsonb DEFAULT '[]', options jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._start(workflow_name, input::text, options::text)); END $$;

CREATE FUNCTION hook_resume(token text, payload jsonb DEFAULT 'null') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._hook_resume(token, payload::text)); END $$;

CREATE FUNCTION run_output(run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN workflow._ok(workflow._run_output(run_id)); END $$;

REVOKE ALL ON FUNCTION "_start"(text, text, text), "_hook_resume"(text, text), "_run_output"(text),
  start(text, jsonb, jsonb), hook_resume(text, jsonb), run_output(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "_start"(text, text, text), "_hook_resume"(text, text), "_run_output"(text),
  start(text, jsonb, jsonb), hook_resume(text, jsonb), run_output(text) TO pgworld_owner;
ALTER FUNCTION start(text, jsonb, jsonb) OWNER TO pgworld_owner;
ALTER FUNCTION hook_resume(text, jsonb) OWNER TO pgworld_owner;
ALTER FUNCTION run_output(text) OWNER TO pgworld_owner;
GRANT EXECUTE ON FUNCTION start(text, jsonb, jsonb), hook_resume(text, jsonb), run_output(text)
TO pgworld_service, pgworld_client;
