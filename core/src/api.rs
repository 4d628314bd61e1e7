//! Every public `workflow.*` function that wraps a Rust `_name` function, declared once. From
//! this table follow the generated files `sql/functions.sql` (the plpgsql wrappers and their
//! grants) and `extension/src/externs.rs` (the `pg_extern`s), the dispatcher's route table and
//! its OpenAPI document; tests hold `world-js` and `docs/` to it. `render` writes the files; a
//! unit test fails when a checked-in copy differs (`PGWORLD_BLESS=1` rewrites them).

pub mod render;

/// A SQL argument or result type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Text,
    Jsonb,
    Bytea,
    Int,
    Bigint,
    Float8,
    Uuid,
    UuidArray,
}

impl Ty {
    pub fn sql(self) -> &'static str {
        match self {
            Ty::Text => "text",
            Ty::Jsonb => "jsonb",
            Ty::Bytea => "bytea",
            Ty::Int => "integer",
            Ty::Bigint => "bigint",
            Ty::Float8 => "double precision",
            Ty::Uuid => "uuid",
            Ty::UuidArray => "uuid[]",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    pub name: &'static str,
    pub ty: Ty,
    /// The SQL default, as written after DEFAULT.
    pub default: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    Volatile,
    Stable,
}

/// What the function returns and how the wrapper passes it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// jsonb, raised through `_ok` when it is an error envelope.
    Json,
    /// A boolean answered as a JSON envelope (raised through `_ok`, then cast).
    JsonBool,
    /// Returned as it comes (`jsonb`, `boolean`, `bigint`, `timestamptz`).
    Plain(&'static str),
    /// `RETURNS TABLE (…)`; the body is `RETURN QUERY SELECT * FROM workflow._name(…)`.
    Table(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Service,
    Client,
    Admin,
}

impl Role {
    pub fn sql(self) -> &'static str {
        match self {
            Role::Service => "pgworld_service",
            Role::Client => "pgworld_client",
            Role::Admin => "pgworld_admin",
        }
    }
}

/// Who may call a route over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    App,
    Admin,
}

/// How a route's request becomes the function's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Arguments in order: the app label (`app_label`), the path parameters (the other text
    /// arguments), the query string (`query`), the JSON body (`body`); the answer verbatim.
    Function,
    /// `app_provision`: 201 or 200 from its `created` field.
    Provision,
    /// JSON or CBOR enqueue (`queue_enqueue`, `queue_enqueue_cbor`).
    Enqueue,
    /// Stream writes: JSON, text or bytes (`stream_put`, `stream_put_bytes`).
    StreamPut,
    /// Stream reads: snapshot or live (`stream_state`, `stream_read`).
    StreamRead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// axum path syntax; `{appId}` is the app label, every other segment a text argument.
    pub path: &'static str,
    pub access: Access,
    pub call: Call,
    pub ok: u16,
    /// Accepts request bodies up to 20 MiB rather than 1 MiB.
    pub big: bool,
    pub summary: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub args: &'static [Arg],
    pub returns: Returns,
    pub volatility: Volatility,
    /// Roles granted EXECUTE besides the owner.
    pub grants: &'static [Role],
    /// NULL arguments reach the Rust side (as `None`) instead of making the call NULL.
    pub takes_nulls: bool,
    /// The `pg_extern` is generated (a `Json` answer over text, jsonb and bytea arguments,
    /// implemented by `extension/src/api.rs`); otherwise it is written by hand next to its logic.
    pub generated: bool,
    /// A statement the wrapper runs first (a check the answer itself cannot raise).
    pub guard: Option<&'static str>,
    pub route: Option<Route>,
}

const fn a(name: &'static str, ty: Ty) -> Arg {
    Arg { name, ty, default: None }
}

const fn d(name: &'static str, ty: Ty, default: &'static str) -> Arg {
    Arg { name, ty, default: Some(default) }
}

const QUERY: Arg = d("query", Ty::Jsonb, "'{}'");
const BODY: Arg = d("body", Ty::Jsonb, "'{}'");
const BODY_REQUIRED: Arg = a("body", Ty::Jsonb);
const RUN: Arg = a("run_id", Ty::Text);

use Role::{Admin as A, Client as C, Service as S};
use Ty::{Bytea, Jsonb, Text};
use Volatility::{Stable, Volatile};

const APP_CALLERS: &[Role] = &[S, C];
const ADMIN_CALLERS: &[Role] = &[S, A];
const SERVICE: &[Role] = &[S];

/// A generated, strict function answering JSON.
const fn json_fn(name: &'static str, args: &'static [Arg], volatility: Volatility, grants: &'static [Role]) -> Function {
    Function {
        name,
        args,
        returns: Returns::Json,
        volatility,
        grants,
        takes_nulls: false,
        generated: true,
        guard: None,
        route: None,
    }
}

const fn manual(mut f: Function) -> Function {
    f.generated = false;
    f
}

const fn nulls(mut f: Function) -> Function {
    f.takes_nulls = true;
    f
}

const fn guarded(mut f: Function, guard: &'static str) -> Function {
    f.guard = Some(guard);
    f
}

const fn returning(mut f: Function, returns: Returns) -> Function {
    f.returns = returns;
    f
}

const fn http(
    mut f: Function,
    method: &'static str,
    path: &'static str,
    access: Access,
    ok: u16,
    summary: &'static str,
) -> Function {
    f.route = Some(Route { method, path, access, call: Call::Function, ok, big: false, summary });
    f
}

const fn via(mut f: Function, call: Call, big: bool) -> Function {
    if let Some(r) = &mut f.route {
        r.call = call;
        r.big = big;
    }
    f
}

macro_rules! app_path {
    ($rest:literal) => {
        concat!("/api/v1/apps/{appId}", $rest)
    };
}

pub static FUNCTIONS: &[Function] = &[
    // Apps, roles and tokens (admin).
    via(
        http(
            json_fn("app_provision", &[BODY_REQUIRED], Volatile, ADMIN_CALLERS),
            "POST",
            "/api/v1/apps",
            Access::Admin,
            201,
            "Provision an app (201 created, 200 existed)",
        ),
        Call::Provision,
        false,
    ),
    json_fn("app_role_grant", &[a("app_label", Text), a("role_name", Text)], Volatile, ADMIN_CALLERS),
    json_fn("app_role_revoke", &[a("role_name", Text)], Volatile, ADMIN_CALLERS),
    http(
        nulls(json_fn("app_token_create", &[a("app_label", Text), BODY], Volatile, ADMIN_CALLERS)),
        "POST",
        app_path!("/tokens"),
        Access::Admin,
        201,
        "Create an API token for the app (the token is in this answer only)",
    ),
    http(
        nulls(json_fn("app_tokens_list", &[d("app_label", Text, "NULL")], Stable, ADMIN_CALLERS)),
        "GET",
        app_path!("/tokens"),
        Access::Admin,
        200,
        "List the app's API tokens (never their secrets)",
    ),
    http(
        nulls(json_fn("app_token_revoke", &[a("app_label", Text), a("token_id", Text)], Volatile, ADMIN_CALLERS)),
        "DELETE",
        app_path!("/tokens/{tokenId}"),
        Access::Admin,
        200,
        "Revoke an API token",
    ),
    nulls(json_fn("admin_token_create", &[BODY], Volatile, &[A])),
    manual(returning(json_fn("token_identity", &[a("token", Text)], Stable, SERVICE), Returns::Plain("jsonb"))),
    http(
        json_fn("k8s_binding_add", &[BODY_REQUIRED], Volatile, ADMIN_CALLERS),
        "POST",
        app_path!("/k8s-binding"),
        Access::Admin,
        201,
        "Bind a service account",
    ),
    http(
        json_fn("k8s_binding_remove", &[BODY_REQUIRED], Volatile, ADMIN_CALLERS),
        "DELETE",
        app_path!("/k8s-binding"),
        Access::Admin,
        200,
        "Remove a binding",
    ),
    json_fn("app_secret_import", &[a("app_label", Text), a("secret", Bytea)], Volatile, ADMIN_CALLERS),
    json_fn("app_secret_remove", &[a("app_label", Text)], Volatile, ADMIN_CALLERS),
    manual(returning(
        json_fn("k8s_identity", &[a("namespace", Text), a("service_account", Text)], Stable, SERVICE),
        Returns::Plain("jsonb"),
    )),
    manual(returning(json_fn("app_exists", &[a("app_label", Text)], Stable, SERVICE), Returns::Plain("boolean"))),
    // Events, runs, steps, hooks (the World's storage).
    via(
        http(
            json_fn("event_create", &[RUN, QUERY, BODY], Volatile, APP_CALLERS),
            "POST",
            app_path!("/runs/{runId}/events"),
            Access::App,
            200,
            "Create an event",
        ),
        Call::Function,
        true,
    ),
    http(
        json_fn("events_list", &[RUN, QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/runs/{runId}/events"),
        Access::App,
        200,
        "List a run's events",
    ),
    http(
        json_fn("event_get", &[RUN, a("event_id", Text), QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/runs/{runId}/events/{eventId}"),
        Access::App,
        200,
        "Get one event",
    ),
    http(
        json_fn("events_by_correlation", &[QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/events/by-correlation"),
        Access::App,
        200,
        "Events by correlation id",
    ),
    http(
        json_fn("run_get", &[RUN, QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/runs/{runId}"),
        Access::App,
        200,
        "Get a run",
    ),
    http(json_fn("runs_list", &[QUERY], Stable, APP_CALLERS), "GET", app_path!("/runs"), Access::App, 200, "List runs"),
    http(
        json_fn("run_replay", &[RUN, BODY], Volatile, APP_CALLERS),
        "POST",
        app_path!("/runs/{runId}/replay"),
        Access::App,
        200,
        "Replay a run on its version",
    ),
    http(
        json_fn("run_cancel", &[RUN, BODY], Volatile, APP_CALLERS),
        "POST",
        app_path!("/runs/{runId}/cancel"),
        Access::App,
        200,
        "Cancel a run",
    ),
    http(
        json_fn("run_wake_up", &[RUN, BODY], Volatile, APP_CALLERS),
        "POST",
        app_path!("/runs/{runId}/wake-up"),
        Access::App,
        200,
        "Complete a run's waits now",
    ),
    http(
        json_fn("workflow_template", &[a("workflow_name", Text), QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/workflows/{workflowName}/template"),
        Access::App,
        200,
        "Step layout of the latest completed run",
    ),
    http(
        json_fn("step_get", &[RUN, a("step_id", Text), QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/runs/{runId}/steps/{stepId}"),
        Access::App,
        200,
        "Get a step",
    ),
    http(
        json_fn("steps_list", &[RUN, QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/runs/{runId}/steps"),
        Access::App,
        200,
        "List a run's steps",
    ),
    http(
        json_fn("hook_get_by_token", &[a("token", Text), QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/hooks/by-token/{token}"),
        Access::App,
        200,
        "Live hook holding a token",
    ),
    http(
        json_fn("hook_get", &[a("hook_id", Text), QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/hooks/{hookId}"),
        Access::App,
        200,
        "Get a hook",
    ),
    http(json_fn("hooks_list", &[QUERY], Stable, APP_CALLERS), "GET", app_path!("/hooks"), Access::App, 200, "List hooks"),
    // Workflows from SQL.
    nulls(json_fn(
        "start",
        &[a("workflow_name", Text), d("input", Jsonb, "'[]'"), d("options", Jsonb, "'{}'")],
        Volatile,
        APP_CALLERS,
    )),
    nulls(json_fn("hook_resume", &[a("token", Text), d("payload", Jsonb, "'null'")], Volatile, APP_CALLERS)),
    nulls(json_fn("run_output", &[RUN], Stable, APP_CALLERS)),
    // Streams.
    via(
        http(
            json_fn("stream_put", &[RUN, a("name", Text), a("query", Jsonb), a("body", Jsonb)], Volatile, APP_CALLERS),
            "PUT",
            app_path!("/runs/{runId}/streams/{name}"),
            Access::App,
            204,
            "Write to or close a stream",
        ),
        Call::StreamPut,
        true,
    ),
    json_fn("stream_put_bytes", &[RUN, a("name", Text), a("query", Jsonb), a("body", Bytea)], Volatile, APP_CALLERS),
    json_fn("stream_state", &[a("name", Text)], Stable, APP_CALLERS),
    via(
        http(
            guarded(
                manual(returning(
                    json_fn(
                        "stream_read",
                        &[a("name", Text), a("from_index", Ty::Bigint), d("max_chunks", Ty::Int, "1000")],
                        Stable,
                        APP_CALLERS,
                    ),
                    Returns::Table("idx bigint, data bytea"),
                )),
                "PERFORM workflow._ok(workflow._stream_state(name));  -- raises WF401/WF403 for a caller without an app",
            ),
            "GET",
            app_path!("/streams/{name}"),
            Access::App,
            200,
            "Read a stream (stream=true: live)",
        ),
        Call::StreamRead,
        false,
    ),
    http(
        json_fn("streams_list", &[RUN], Stable, APP_CALLERS),
        "GET",
        app_path!("/runs/{runId}/streams"),
        Access::App,
        200,
        "Names of a run's streams",
    ),
    http(
        json_fn("stream_chunks", &[RUN, a("name", Text), QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/runs/{runId}/streams/{name}/chunks"),
        Access::App,
        200,
        "A page of stream chunks",
    ),
    http(
        json_fn("stream_info", &[RUN, a("name", Text)], Stable, APP_CALLERS),
        "GET",
        app_path!("/runs/{runId}/streams/{name}/info"),
        Access::App,
        200,
        "Stream tail index and state",
    ),
    // The queue, handlers, keys.
    via(
        http(
            json_fn("queue_enqueue", &[QUERY, BODY], Volatile, APP_CALLERS),
            "POST",
            app_path!("/queue"),
            Access::App,
            201,
            "Enqueue a message (JSON or CBOR)",
        ),
        Call::Enqueue,
        true,
    ),
    json_fn("queue_enqueue_cbor", &[a("query", Jsonb), a("body", Bytea)], Volatile, APP_CALLERS),
    http(
        json_fn("handler_register", &[BODY_REQUIRED], Volatile, APP_CALLERS),
        "POST",
        app_path!("/handlers"),
        Access::App,
        201,
        "Register a pod's handlers",
    ),
    http(
        json_fn("handler_deregister", &[a("pod_id", Text)], Volatile, APP_CALLERS),
        "DELETE",
        app_path!("/handlers/{podId}"),
        Access::App,
        200,
        "Deregister a pod",
    ),
    http(
        json_fn("encryption_key", &[QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/encryption-key"),
        Access::App,
        200,
        "Per-run encryption key",
    ),
    http(
        json_fn("dead_letters_list", &[QUERY], Stable, APP_CALLERS),
        "GET",
        app_path!("/dead-letters"),
        Access::App,
        200,
        "List dead letters",
    ),
    http(
        json_fn("dead_letter_retry", &[a("message_id", Text)], Volatile, APP_CALLERS),
        "POST",
        app_path!("/dead-letters/{messageId}/retry"),
        Access::App,
        200,
        "Retry a dead letter",
    ),
    // Versions and quotas (admin).
    http(
        json_fn("version_status", &[a("deployment_id", Text)], Stable, ADMIN_CALLERS),
        "GET",
        app_path!("/versions/{deploymentId}/status"),
        Access::Admin,
        200,
        "Draining status of a version",
    ),
    http(
        json_fn("version_expire", &[a("deployment_id", Text)], Volatile, ADMIN_CALLERS),
        "POST",
        app_path!("/versions/{deploymentId}/expire"),
        Access::Admin,
        200,
        "Force-expire a version",
    ),
    http(
        json_fn("version_notify", &[BODY_REQUIRED], Volatile, ADMIN_CALLERS),
        "POST",
        "/api/v1/versions/notify",
        Access::Admin,
        200,
        "Set a version's status",
    ),
    http(json_fn("quotas_get", &[], Stable, ADMIN_CALLERS), "GET", app_path!("/quotas"), Access::Admin, 200, "Get quotas"),
    http(
        json_fn("quotas_put", &[BODY_REQUIRED], Volatile, ADMIN_CALLERS),
        "PUT",
        app_path!("/quotas"),
        Access::Admin,
        200,
        "Change quotas",
    ),
    json_fn("retention_get", &[], Stable, ADMIN_CALLERS),
    json_fn("retention_put", &[BODY_REQUIRED], Volatile, ADMIN_CALLERS),
    // The dispatcher's own (service only: they act across apps).
    manual(returning(
        json_fn(
            "dispatch_claim",
            &[a("owner", Text), d("max", Ty::Int, "100"), d("lease_seconds", Ty::Float8, "60")],
            Volatile,
            SERVICE,
        ),
        Returns::Table(
            "lease_id uuid, id bigint, queue_name text, kind text, url text, encoding text, body_json jsonb, \
             body_cbor bytea, headers jsonb, attempts integer, deployment_version text, application_id integer",
        ),
    )),
    manual(returning(
        json_fn("dispatch_renew", &[a("lease_ids", Ty::UuidArray), d("lease_seconds", Ty::Float8, "60")], Volatile, SERVICE),
        Returns::Plain("bigint"),
    )),
    manual(returning(
        json_fn("dispatch_complete", &[a("lease_id", Ty::Uuid), a("outcome", Jsonb)], Volatile, SERVICE),
        Returns::JsonBool,
    )),
    manual(returning(
        json_fn("dispatch_delivered", &[a("lease_ids", Ty::UuidArray)], Volatile, SERVICE),
        Returns::Plain("bigint"),
    )),
    manual(returning(json_fn("dispatch_next_due", &[], Stable, SERVICE), Returns::Plain("timestamptz"))),
    manual(returning(json_fn("maint_run", &[], Volatile, SERVICE), Returns::Plain("jsonb"))),
    manual(returning(json_fn("metrics", &[], Stable, SERVICE), Returns::Plain("jsonb"))),
    manual(returning(json_fn("maint_reap_orphans", &[d("limit", Ty::Int, "100")], Volatile, SERVICE), Returns::Plain("bigint"))),
];

/// The declaration of `name`.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

impl Function {
    /// The route's path parameters, in order: the text arguments other than `app_label`.
    pub fn path_args(&self) -> impl Iterator<Item = &Arg> {
        self.args.iter().filter(|a| a.ty == Ty::Text && a.name != "app_label")
    }

    pub fn takes_app(&self) -> bool {
        self.args.first().is_some_and(|a| a.name == "app_label")
    }

    pub fn takes(&self, name: &str) -> bool {
        self.args.iter().any(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests;
