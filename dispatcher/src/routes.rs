//! Every façade route, as data built from the one declaration of the SQL API
//! (`pgworld_core::api`): the router, the OpenAPI document and the authorization rules all read
//! this table, and the SQL functions they call follow from the same declaration, so none of
//! them can drift apart.

use axum::http::{Method, StatusCode};
pub use pgworld_core::api::Access;
use pgworld_core::api::{self, Function};
use std::sync::LazyLock;

/// How the request becomes the route's one SQL call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `workflow.<function>([app label], path params…, [query], [body])`, the response body
    /// verbatim. `app`: functions an operator also calls from psql take the app by name.
    Function { app: bool, query: bool, body: bool },
    /// `app_provision`: 201 or 200 from its `created` field.
    Provision,
    /// JSON or CBOR enqueue.
    Enqueue,
    /// Stream writes: JSON, text or bytes, with the header flags.
    StreamPut,
    /// Stream reads: snapshot or live.
    StreamRead,
}

#[derive(Debug, Clone)]
pub struct Route {
    /// The `workflow.*` function the route calls, as declared.
    pub function: &'static str,
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

fn method(name: &str) -> Method {
    match name {
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        _ => Method::GET,
    }
}

fn route_of(f: &'static Function, r: &'static api::Route) -> Route {
    let call = match r.call {
        api::Call::Function => Call::Function { app: f.takes_app(), query: f.takes("query"), body: f.takes("body") },
        api::Call::Provision => Call::Provision,
        api::Call::Enqueue => Call::Enqueue,
        api::Call::StreamPut => Call::StreamPut,
        api::Call::StreamRead => Call::StreamRead,
    };
    Route {
        function: f.name,
        method: method(r.method),
        path: r.path,
        access: r.access,
        call,
        ok: StatusCode::from_u16(r.ok).unwrap_or(StatusCode::OK),
        limit: if r.big { 20 * MIB } else { MIB },
        summary: r.summary,
    }
}

/// Every declared function's route, in declaration order.
pub static ROUTES: LazyLock<Vec<Route>> =
    LazyLock::new(|| api::FUNCTIONS.iter().filter_map(|f| f.route.as_ref().map(|r| route_of(f, r))).collect());

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
