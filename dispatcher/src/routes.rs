//! Every façade route of spec/http-api.md §3, as data: the router, the OpenAPI document and the
//! authorization rules all read this table, so they cannot drift apart.

use axum::http::{Method, StatusCode};

/// Who may call a route (http-api.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    App,
    Admin,
}

/// How the request becomes the route's one SQL call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `workflow.<function>([app label], path params…, [query], [body])`, the response body
    /// verbatim. `app`: functions an operator also calls from psql take the app by name.
    Function { function: &'static str, app: bool, query: bool, body: bool },
    /// `app_provision`: 201 or 200 from its `created` field.
    Provision,
    /// JSON or CBOR enqueue.
    Enqueue,
    /// Stream writes: JSON, text or bytes, with the header flags.
    StreamPut,
    /// Stream reads: snapshot or live.
    StreamRead,
}

impl Call {
    /// The `workflow.*` function the route calls.
    pub fn function(&self) -> &'static str {
        match self {
            Call::Function { function, .. } => function,
            Call::Provision => "app_provision",
            Call::Enqueue => "queue_enqueue",
            Call::StreamPut => "stream_put",
            Call::StreamRead => "stream_read",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// axum path syntax; `{appId}` is the app label, every other segment a text argument.
    pub path: &'static str,
    pub access: Access,
    pub call: Call,
    pub ok: StatusCode,
    /// Largest accepted request body (http-api.md §1.4).
    pub limit: usize,
    pub summary: &'static str,
}

const MIB: usize = 1024 * 1024;

const fn f(function: &'static str, query: bool, body: bool) -> Call {
    Call::Function { function, app: false, query, body }
}

/// A function that takes the URL's app label first.
const fn for_app(function: &'static str, body: bool) -> Call {
    Call::Function { function, app: true, query: false, body }
}

const fn route(method: Method, path: &'static str, access: Access, call: Call, ok: StatusCode, summary: &'static str) -> Route {
    Route { method, path, access, call, ok, limit: MIB, summary }
}

const fn big(mut r: Route) -> Route {
    r.limit = 20 * MIB;
    r
}

use Access::{Admin, App};
use StatusCode as S;

pub static ROUTES: &[Route] = &[
    route(Method::POST, "/api/v1/apps", Admin, Call::Provision, S::CREATED, "Provision an app (201 created, 200 existed)"),
    route(
        Method::POST,
        "/api/v1/apps/{appId}/tokens",
        Admin,
        for_app("app_token_create", true),
        S::CREATED,
        "Create an API token for the app (the token is in this answer only)",
    ),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/tokens",
        Admin,
        for_app("app_tokens_list", false),
        S::OK,
        "List the app's API tokens (never their secrets)",
    ),
    route(
        Method::DELETE,
        "/api/v1/apps/{appId}/tokens/{tokenId}",
        Admin,
        for_app("app_token_revoke", false),
        S::OK,
        "Revoke an API token",
    ),
    route(
        Method::POST,
        "/api/v1/apps/{appId}/k8s-binding",
        Admin,
        f("k8s_binding_add", false, true),
        S::CREATED,
        "Bind a service account",
    ),
    route(
        Method::DELETE,
        "/api/v1/apps/{appId}/k8s-binding",
        Admin,
        f("k8s_binding_remove", false, true),
        S::OK,
        "Remove a binding",
    ),
    big(route(
        Method::POST,
        "/api/v1/apps/{appId}/runs/{runId}/events",
        App,
        f("event_create", true, true),
        S::OK,
        "Create an event",
    )),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/runs/{runId}/events",
        App,
        f("events_list", true, false),
        S::OK,
        "List a run's events",
    ),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/runs/{runId}/events/{eventId}",
        App,
        f("event_get", true, false),
        S::OK,
        "Get one event",
    ),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/events/by-correlation",
        App,
        f("events_by_correlation", true, false),
        S::OK,
        "Events by correlation id",
    ),
    route(Method::GET, "/api/v1/apps/{appId}/runs/{runId}", App, f("run_get", true, false), S::OK, "Get a run"),
    route(Method::GET, "/api/v1/apps/{appId}/runs", App, f("runs_list", true, false), S::OK, "List runs"),
    route(
        Method::POST,
        "/api/v1/apps/{appId}/runs/{runId}/replay",
        App,
        f("run_replay", false, true),
        S::OK,
        "Replay a run on its version",
    ),
    route(Method::POST, "/api/v1/apps/{appId}/runs/{runId}/cancel", App, f("run_cancel", false, true), S::OK, "Cancel a run"),
    route(
        Method::POST,
        "/api/v1/apps/{appId}/runs/{runId}/wake-up",
        App,
        f("run_wake_up", false, true),
        S::OK,
        "Complete a run's waits now",
    ),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/workflows/{workflowName}/template",
        App,
        f("workflow_template", true, false),
        S::OK,
        "Step layout of the latest completed run",
    ),
    route(Method::GET, "/api/v1/apps/{appId}/runs/{runId}/steps/{stepId}", App, f("step_get", true, false), S::OK, "Get a step"),
    route(Method::GET, "/api/v1/apps/{appId}/runs/{runId}/steps", App, f("steps_list", true, false), S::OK, "List a run's steps"),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/hooks/by-token/{token}",
        App,
        f("hook_get_by_token", true, false),
        S::OK,
        "Live hook holding a token",
    ),
    route(Method::GET, "/api/v1/apps/{appId}/hooks/{hookId}", App, f("hook_get", true, false), S::OK, "Get a hook"),
    route(Method::GET, "/api/v1/apps/{appId}/hooks", App, f("hooks_list", true, false), S::OK, "List hooks"),
    big(route(
        Method::PUT,
        "/api/v1/apps/{appId}/runs/{runId}/streams/{name}",
        App,
        Call::StreamPut,
        S::NO_CONTENT,
        "Write to or close a stream",
    )),
    route(Method::GET, "/api/v1/apps/{appId}/streams/{name}", App, Call::StreamRead, S::OK, "Read a stream (stream=true: live)"),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/runs/{runId}/streams",
        App,
        f("streams_list", false, false),
        S::OK,
        "Names of a run's streams",
    ),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/runs/{runId}/streams/{name}/chunks",
        App,
        f("stream_chunks", true, false),
        S::OK,
        "A page of stream chunks",
    ),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/runs/{runId}/streams/{name}/info",
        App,
        f("stream_info", false, false),
        S::OK,
        "Stream tail index and state",
    ),
    big(route(Method::POST, "/api/v1/apps/{appId}/queue", App, Call::Enqueue, S::CREATED, "Enqueue a message (JSON or CBOR)")),
    route(
        Method::POST,
        "/api/v1/apps/{appId}/handlers",
        App,
        f("handler_register", false, true),
        S::CREATED,
        "Register a pod's handlers",
    ),
    route(
        Method::DELETE,
        "/api/v1/apps/{appId}/handlers/{podId}",
        App,
        f("handler_deregister", false, false),
        S::OK,
        "Deregister a pod",
    ),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/encryption-key",
        App,
        f("encryption_key", true, false),
        S::OK,
        "Per-run encryption key",
    ),
    route(Method::GET, "/api/v1/apps/{appId}/dead-letters", App, f("dead_letters_list", true, false), S::OK, "List dead letters"),
    route(
        Method::POST,
        "/api/v1/apps/{appId}/dead-letters/{messageId}/retry",
        App,
        f("dead_letter_retry", false, false),
        S::OK,
        "Retry a dead letter",
    ),
    route(
        Method::GET,
        "/api/v1/apps/{appId}/versions/{deploymentId}/status",
        Admin,
        f("version_status", false, false),
        S::OK,
        "Draining status of a version",
    ),
    route(
        Method::POST,
        "/api/v1/apps/{appId}/versions/{deploymentId}/expire",
        Admin,
        f("version_expire", false, false),
        S::OK,
        "Force-expire a version",
    ),
    route(Method::POST, "/api/v1/versions/notify", Admin, f("version_notify", false, true), S::OK, "Set a version's status"),
    route(Method::GET, "/api/v1/apps/{appId}/quotas", Admin, f("quotas_get", false, false), S::OK, "Get quotas"),
    route(Method::PUT, "/api/v1/apps/{appId}/quotas", Admin, f("quotas_put", false, true), S::OK, "Change quotas"),
];

impl Route {
    /// Path parameters other than the app, in path order: the function's leading text arguments.
    pub fn path_params(&self) -> Vec<&'static str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .filter(|p| *p != "appId")
            .collect()
    }

    pub fn names_app(&self) -> bool {
        self.path.contains("{appId}")
    }

    /// A stable label for metrics: the path template.
    pub fn label(&self) -> &'static str {
        self.path
    }
}
