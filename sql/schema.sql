-- pgworld schema (0.3.0): tables and indexes. Loaded first (bootstrap) by the extension script.
-- Every tenant table leads its keys with application_id; row-level security (api.sql) restricts
-- each to the current app. "Active" lookups use partial indexes so they never scan history.

-- Roles are cluster-wide and may already exist from another database's install.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgworld_owner') THEN
    -- Owns the tables and runs the API functions (SECURITY DEFINER). Not a superuser, so the
    -- forced row-level security policies apply to it.
    CREATE ROLE pgworld_owner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgworld_service') THEN
    CREATE ROLE pgworld_service NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgworld_client') THEN
    CREATE ROLE pgworld_client NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgworld_admin') THEN
    CREATE ROLE pgworld_admin NOLOGIN;
  END IF;
END
$roles$;

CREATE TABLE applications (
    application_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label          text NOT NULL UNIQUE
                   CHECK (label ~ '^[A-Za-z0-9._~@-]{1,128}$'),
    created_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE applications IS 'Tenants. application_id is carried by every tenant row.';

-- The per-app encryption secret lives apart so that no view or grant on applications can leak it.
CREATE TABLE app_secrets (
    application_id integer PRIMARY KEY REFERENCES applications,
    secret         bytea NOT NULL CHECK (length(secret) = 32),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Direct SQL clients: a login role bound to one app (tenancy.md §5.4).
CREATE TABLE app_roles (
    role_oid       oid PRIMARY KEY,
    application_id integer NOT NULL REFERENCES applications,
    granted_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE quotas (
    application_id       integer PRIMARY KEY REFERENCES applications,
    max_runs             integer CHECK (max_runs >= 1),
    max_events_per_run   integer CHECK (max_events_per_run >= 1),
    max_queue_per_minute integer CHECK (max_queue_per_minute >= 1),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- Finished runs are kept this long; NULL: workflow.run_retention (0.2.0).
    run_retention_seconds integer CHECK (run_retention_seconds >= 3600)
);

-- Active (pending/running) run count per app. Shard 0 is taken FOR UPDATE by run creation so the
-- maxRuns check is exact; terminations decrement shards 1..8 so they do not queue behind it.
CREATE TABLE run_counters (
    application_id integer NOT NULL REFERENCES applications,
    shard          smallint NOT NULL CHECK (shard BETWEEN 0 AND 8),
    active         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (application_id, shard)
);

CREATE TABLE deployment_versions (
    application_id integer NOT NULL REFERENCES applications,
    deployment_id  text NOT NULL,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draining', 'expired')),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, deployment_id)
);

CREATE TABLE runs (
    application_id        integer NOT NULL,
    run_id                text NOT NULL,
    status                text NOT NULL
                          CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'expired')),
    deployment_id         text NOT NULL,
    workflow_name         text NOT NULL,
    spec_version          integer NOT NULL,
    event_count           bigint NOT NULL DEFAULT 0,
    execution_context     jsonb,
    input                 jsonb,
    output                jsonb,
    error                 jsonb,
    error_code            text,
    attributes            jsonb NOT NULL DEFAULT '{}',
    encryption_public_key text,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    started_at            timestamptz,
    completed_at          timestamptz,
    expired_at            timestamptz,
    PRIMARY KEY (application_id, run_id)
) WITH (fillfactor = 80);
COMMENT ON TABLE runs IS 'One row per workflow run; payload columns hold the stored form ({"$bytes": base64} for bytes).';
CREATE INDEX runs_list_idx ON runs (application_id, created_at DESC, run_id DESC);
CREATE INDEX runs_workflow_idx ON runs (application_id, workflow_name, created_at DESC);
CREATE INDEX runs_active_idx ON runs (application_id, deployment_id)
    WHERE status IN ('pending', 'running');
-- Retention finds finished runs oldest first (0.2.0).
CREATE INDEX runs_finished_idx ON runs (updated_at)
    WHERE status IN ('completed', 'failed', 'cancelled', 'expired');

CREATE TABLE events (
    application_id integer NOT NULL,
    run_id         text NOT NULL,
    slot           bigint NOT NULL CHECK (slot >= 1),
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    event_type     text NOT NULL,
    correlation_id text,
    event_data     jsonb,
    spec_version   integer NOT NULL,
    created_at     timestamptz NOT NULL,
    resume_id      text,
    resume_digest  text,
    PRIMARY KEY (application_id, run_id, slot)
);
COMMENT ON TABLE events IS 'Append-only run logs; slot is dense from 1 per run (eventId = evnt_ + 26-digit slot).';
CREATE INDEX events_correlation_idx ON events (application_id, correlation_id, seq)
    WHERE correlation_id IS NOT NULL;
CREATE UNIQUE INDEX events_attr_correlation_idx ON events (application_id, run_id, correlation_id)
    WHERE event_type = 'attr_set' AND correlation_id IS NOT NULL;
CREATE UNIQUE INDEX events_resume_idx ON events (application_id, run_id, resume_id)
    WHERE resume_id IS NOT NULL;

CREATE TABLE steps (
    application_id integer NOT NULL,
    run_id         text NOT NULL,
    step_id        text NOT NULL,
    step_name      text NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    attempt        integer NOT NULL DEFAULT 0,
    spec_version   integer NOT NULL,
    input          jsonb,
    output         jsonb,
    error          jsonb,
    retry_after    timestamptz,
    created_slot   bigint NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    started_at     timestamptz,
    completed_at   timestamptz,
    PRIMARY KEY (application_id, run_id, step_id)
) WITH (fillfactor = 80);
CREATE INDEX steps_order_idx ON steps (application_id, run_id, created_slot);

CREATE TABLE hooks (
    application_id integer NOT NULL,
    run_id         text NOT NULL,
    hook_id        text NOT NULL,
    hook_seq       bigint GENERATED ALWAYS AS IDENTITY,
    token          text NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'received', 'disposed')),
    owner_id       text NOT NULL DEFAULT '',
    project_id     text NOT NULL DEFAULT '',
    environment    text NOT NULL DEFAULT '',
    metadata       jsonb,
    is_webhook     boolean NOT NULL DEFAULT false,
    is_system      boolean,
    spec_version   integer NOT NULL,
    created_at     timestamptz NOT NULL,
    received_at    timestamptz,
    disposed_at    timestamptz,
    PRIMARY KEY (application_id, run_id, hook_id)
);
-- A token has at most one live holder per app; concurrent creates race on this index.
CREATE UNIQUE INDEX hooks_live_token_idx ON hooks (application_id, token) WHERE status <> 'disposed';
CREATE INDEX hooks_live_idx ON hooks (application_id, hook_seq) WHERE status <> 'disposed';
CREATE INDEX hooks_id_idx ON hooks (application_id, hook_id, hook_seq);
CREATE INDEX hooks_run_idx ON hooks (application_id, run_id, hook_seq);

CREATE TABLE waits (
    application_id integer NOT NULL,
    run_id         text NOT NULL,
    wait_id        text NOT NULL,
    status         text NOT NULL CHECK (status IN ('waiting', 'completed')),
    resume_at      timestamptz,
    spec_version   integer NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    completed_at   timestamptz,
    PRIMARY KEY (application_id, run_id, wait_id)
);
CREATE INDEX waits_waiting_idx ON waits (application_id, run_id) WHERE status = 'waiting';

-- Handlers: which pods (or services) serve a deployment version of an app (queue.md §6).
CREATE TABLE handlers (
    application_id     integer NOT NULL REFERENCES applications,
    pod_id             text NOT NULL,
    deployment_version text NOT NULL,
    service_scoped     boolean NOT NULL DEFAULT false,
    workflow_url       text NOT NULL,
    step_url           text NOT NULL,
    webhook_url        text NOT NULL,
    registered_at      timestamptz NOT NULL DEFAULT now(),
    last_seen          timestamptz NOT NULL DEFAULT now(),
    -- What the pods run, when they say (workflow.start writes what they read).
    spec_version       integer,
    core_version       text,
    -- The most deliveries in flight to this pod at once, across every dispatcher (enforced by
    -- the claim when the library is preloaded; pgworld_core::queue::pods).
    max_concurrency    integer NOT NULL DEFAULT 32 CHECK (max_concurrency BETWEEN 1 AND 256),
    PRIMARY KEY (application_id, pod_id)
);
CREATE INDEX handlers_version_idx ON handlers (application_id, deployment_version);

-- The queue's hot table: one narrow row per message, updated on every state change. Payloads
-- live in message_bodies so these updates never copy them. Finished rows (delivered, dead) fall
-- out of every partial index the dispatcher reads, so they never slow a claim. unroutable_since
-- only times out messages whose version lost all its handlers (queue.md §6.3).
CREATE TABLE messages (
    id                   bigint GENERATED ALWAYS AS IDENTITY,
    application_id       integer NOT NULL,
    state                text NOT NULL
                         CHECK (state IN ('pending', 'deferred', 'leased', 'retrying', 'delivered', 'dead')),
    kind                 text NOT NULL CHECK (kind IN ('workflow', 'step', 'other')),
    queue_name           text NOT NULL,
    run_id               text NOT NULL DEFAULT '',
    deployment_version   text NOT NULL DEFAULT '',
    available_at         timestamptz NOT NULL,
    attempts             integer NOT NULL DEFAULT 0,
    lease_id             uuid,
    lease_owner          text,
    lease_expires_at     timestamptz,
    unroutable_since     timestamptz,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    delivered_at         timestamptz,
    dead_at              timestamptz,
    failure_finalized_at timestamptz,
    -- The transaction that last made the message due (set by messages_ready below).
    ready_xid            bigint NOT NULL DEFAULT 0,
    -- The pod a leased message was sent to.
    lease_pod            text,
    PRIMARY KEY (id)
) WITH (fillfactor = 70);
COMMENT ON TABLE messages IS 'Queue messages (queue.md). Public id msg_<id>; bodies in message_bodies.';
-- The claim path: per routable (app, version), queued messages in due order. Claims walk only
-- the versions that have handlers, so a backlog nobody serves never slows them down.
CREATE INDEX messages_due_idx ON messages (application_id, deployment_version, available_at, id)
    WHERE state IN ('pending', 'deferred', 'retrying');
-- Claims keep a floor in claim order and look below it only for messages made due by
-- transactions their snapshot did not see (pgworld_core::queue::scan): this index finds those
-- without walking the dead row versions at the head of messages_due_idx.
CREATE INDEX messages_ready_xid_idx ON messages (application_id, deployment_version, ready_xid)
    WHERE state IN ('pending', 'deferred', 'retrying');
CREATE FUNCTION _messages_mark_ready() RETURNS trigger
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.ready_xid := pg_current_xact_id()::text::bigint; RETURN NEW; END $$;
CREATE TRIGGER messages_ready BEFORE INSERT OR UPDATE OF state, available_at ON messages
    FOR EACH ROW WHEN (NEW.state IN ('pending', 'deferred', 'retrying')) EXECUTE FUNCTION _messages_mark_ready();
CREATE INDEX messages_unroutable_idx ON messages (application_id, deployment_version)
    WHERE state IN ('pending', 'deferred', 'retrying') AND unroutable_since IS NOT NULL;
CREATE UNIQUE INDEX messages_lease_idx ON messages (lease_id) WHERE state = 'leased';
CREATE INDEX messages_lease_expiry_idx ON messages (lease_expires_at) WHERE state = 'leased';
-- Draining counts and force-expire: the live messages of one version.
CREATE INDEX messages_live_version_idx ON messages (application_id, deployment_version)
    WHERE state IN ('pending', 'deferred', 'retrying', 'leased');
-- Orphan detection and run actions: every message of a run (its last activity counts).
CREATE INDEX messages_run_idx ON messages (application_id, run_id, updated_at);
CREATE INDEX messages_dead_idx ON messages (application_id, id DESC) WHERE state = 'dead';
CREATE INDEX messages_retention_idx ON messages (updated_at) WHERE state IN ('delivered', 'dead');

-- Cold columns of a message: written once at enqueue, read at claim and by dead-letter listings.
CREATE TABLE message_bodies (
    id              bigint PRIMARY KEY,
    application_id  integer NOT NULL,
    encoding        text NOT NULL CHECK (encoding IN ('json', 'cbor')),
    body_json       jsonb,
    body_cbor       bytea,
    headers         jsonb,
    idempotency_key text,
    step_id         text,
    health_check    boolean NOT NULL DEFAULT false,
    namespace       text,
    last_failure    jsonb,
    CHECK ((encoding = 'json') = (body_json IS NOT NULL) AND (encoding = 'cbor') = (body_cbor IS NOT NULL))
);
-- Idempotency keys are unique per app among stored messages (either encoding).
CREATE UNIQUE INDEX message_bodies_idempotency_idx ON message_bodies (application_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Accepted enqueues per app and clock minute, spread over shards so concurrent enqueuers do not
-- serialize on one row (queue.md §12).
CREATE TABLE queue_rate (
    application_id integer NOT NULL,
    window_start   timestamptz NOT NULL,
    shard          smallint NOT NULL,
    accepted       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (application_id, window_start, shard)
);

-- Streams (streams.md): one row per (app, name) holding the write lock, the chunk count and the
-- close marker; chunks are dense from index 0.
CREATE TABLE streams (
    application_id integer NOT NULL,
    name           text NOT NULL,
    run_id         text NOT NULL,
    chunk_count    bigint NOT NULL DEFAULT 0,
    closed         boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, name)
);
CREATE INDEX streams_run_idx ON streams (application_id, run_id, created_at);

CREATE TABLE stream_chunks (
    application_id integer NOT NULL,
    name           text NOT NULL,
    idx            bigint NOT NULL CHECK (idx >= 0),
    data           bytea NOT NULL,
    PRIMARY KEY (application_id, name, idx)
);

-- Kubernetes service accounts allowed to act for an app (tenancy.md §4, §6).
CREATE TABLE k8s_bindings (
    application_id  integer NOT NULL REFERENCES applications,
    namespace       text NOT NULL,
    service_account text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, namespace, service_account)
);
CREATE INDEX k8s_bindings_identity_idx ON k8s_bindings (namespace, service_account);

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

-- The row enqueues lock to share their NOTIFY pings (a lock no client role can take), and the key
-- that makes live-stream pings opaque: a ping carries HMAC(key, app id:stream name), never the name
-- or the app, since any role may LISTEN. Not in backups: a restored database makes its own key.
CREATE TABLE notify_gate (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    stream_key bytea NOT NULL CHECK (length(stream_key) = 32)
);
INSERT INTO notify_gate (stream_key)
VALUES (sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')));
