//! The REST façade (spec/http-api.md): each route is parsed, authorized, turned into one
//! `workflow.*` call in one transaction that first selects the app, and answered with the
//! function's result. Routes are data (`routes.rs`); this module is the one handler they share.

mod health;
mod keepalive;
mod openapi;
mod streams;

use crate::errors::json_text;
pub use crate::errors::ApiError;
use crate::routes::{Call, Route, ROUTES};

use crate::auth::{Auth, Caller};
use crate::backoff::Backoff;
use crate::hub::StreamHub;
use crate::metrics::Metrics;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use deadpool_postgres::Pool;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub auth: Arc<Auth>,
    pub metrics: Arc<Metrics>,
    pub hub: Arc<StreamHub>,
    pub api_enabled: bool,
}

/// The public router: health, metrics, OpenAPI and (when enabled) every façade route.
pub fn app(state: AppState) -> Router {
    let mut router = health::router();
    if state.api_enabled {
        for route in ROUTES.iter() {
            let filter = MethodFilter::try_from(route.method.clone()).unwrap_or(MethodFilter::GET);
            router = router.route(route.path, on(filter, move |s: State<AppState>, req: Request| handle(route, s, req)));
        }
    }
    router
        .route("/openapi.json", axum::routing::get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::from_fn(keepalive::keep_connection_usable))
        .with_state(state)
}

/// Health, readiness and metrics only, for the metrics port.
pub fn ops(state: AppState) -> Router {
    health::router().fallback(not_found).with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::route_not_found(method.as_str(), uri.path()).into_response()
}

/// The one handler: authorize, parse, call, answer; and count it.
async fn handle(route: &'static Route, State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let response = match serve(route, &state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    state.metrics.request(route.label(), route.method.as_str(), response.status().as_u16(), started.elapsed());
    response
}

/// Path parameters, the query string as a JSON object, headers and the raw body of a request.
pub struct Parsed {
    pub params: HashMap<String, String>,
    pub query: Map<String, Value>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub content_type: Option<String>,
}

/// Everything but the body, which is read only once the caller is authorized.
async fn parse_head(parts: &mut axum::http::request::Parts) -> Result<(HashMap<String, String>, Map<String, Value>), ApiError> {
    use axum::extract::FromRequestParts;
    // axum percent-decodes path parameters once (http-api.md §1.1).
    let params: HashMap<String, String> = match axum::extract::RawPathParams::from_request_parts(parts, &()).await {
        Ok(raw) => raw.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        Err(_) => return Err(ApiError::bad_request("path parameters are not valid UTF-8")),
    };
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
        // Repeated keys keep the last value (http-api.md §1.9).
        query.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    if parts.headers.get("x-pgworld-payload").and_then(|v| v.to_str().ok()) == Some("envelope") {
        query.insert("$payload".into(), Value::String("envelope".into()));
    }
    Ok((params, query))
}

async fn read_body(
    route: &Route,
    parts: axum::http::request::Parts,
    params: HashMap<String, String>,
    query: Map<String, Value>,
    body: Body,
) -> Result<Parsed, ApiError> {
    let body = axum::body::to_bytes(body, route.limit).await.map_err(|_| ApiError::too_large())?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    Ok(Parsed { params, query, headers: parts.headers, body, content_type })
}

impl Parsed {
    /// The JSON body; `{}` when empty. Other content types are the caller's 415.
    pub fn json_body(&self) -> Result<Value, ApiError> {
        match self.content_type.as_deref() {
            None | Some("application/json") => {}
            Some(other) => return Err(ApiError::unsupported_media(other)),
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        serde_json::from_slice(&self.body).map_err(|_| ApiError::bad_request("Body is not valid JSON"))
    }

    pub fn param(&self, name: &str) -> String {
        self.params.get(name).cloned().unwrap_or_default()
    }
}

async fn serve(route: &'static Route, state: &AppState, req: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let (params, query) = parse_head(&mut parts).await?;
    let caller = state.auth.authorize(route, params.get("appId").map(String::as_str), &parts.headers, &state.pool).await?;
    let parsed = read_body(route, parts, params, query, body).await?;
    match route.call {
        Call::Function { app, query, body } => {
            let mut args = Vec::new();
            if app {
                args.push(Arg::Text(parsed.param("appId")));
            }
            args.extend(route.path_params().iter().map(|p| Arg::Text(parsed.param(p))));
            if query {
                args.push(Arg::Json(Value::Object(parsed.query.clone())));
            }
            if body {
                args.push(Arg::Json(parsed.json_body()?));
            } else if route.method != Method::GET && route.method != Method::DELETE {
                // A body the route ignores is still refused if it is not JSON (http-api.md §1.3).
                parsed.json_body()?;
            }
            let text = call_text(state, &caller, route.function, &args).await?;
            if route.function == "app_token_revoke" {
                // Revoked here: this replica's cache forgets the token at once.
                state.auth.forget_api_token(&parsed.param("tokenId"));
            }
            if route.ok == StatusCode::NO_CONTENT {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            Ok((route.ok, json_text(text)).into_response())
        }
        Call::Provision => {
            let body = parsed.json_body()?;
            let text = call_text(state, &caller, route.function, &[Arg::Json(body)]).await?;
            let mut out: Value = serde_json::from_str(&text).map_err(|_| ApiError::internal())?;
            let created = out.get("created").and_then(Value::as_bool).unwrap_or(false);
            if let Value::Object(m) = &mut out {
                m.remove("created");
            }
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok((status, json_text(out.to_string())).into_response())
        }
        Call::Enqueue => {
            let query = Arg::Json(Value::Object(parsed.query.clone()));
            let text = match parsed.content_type.as_deref() {
                Some("application/cbor") => {
                    call_text(state, &caller, "queue_enqueue_cbor", &[query, Arg::Bytes(parsed.body.to_vec())]).await?
                }
                None | Some("application/json") => {
                    call_text(state, &caller, "queue_enqueue", &[query, Arg::Json(parsed.json_body()?)]).await?
                }
                Some(other) => return Err(ApiError::unsupported_media(other)),
            };
            Ok((StatusCode::CREATED, json_text(text)).into_response())
        }
        Call::StreamPut => streams::put(state, &caller, &parsed).await,
        Call::StreamRead => streams::read(state, caller, &parsed).await,
    }
}

/// One argument of a `workflow.*` call.
pub enum Arg {
    Text(String),
    Json(Value),
    Bytes(Vec<u8>),
    BigInt(i64),
    Int(i32),
}

impl Arg {
    fn cast(&self) -> &'static str {
        match self {
            Arg::Text(_) => "text",
            Arg::Json(_) => "jsonb",
            Arg::Bytes(_) => "bytea",
            Arg::BigInt(_) => "int8",
            Arg::Int(_) => "int4",
        }
    }

    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Arg::Text(s) => s,
            Arg::Json(v) => v,
            Arg::Bytes(b) => b,
            Arg::BigInt(n) => n,
            Arg::Int(n) => n,
        }
    }
}

/// The settings every call starts with, as a one-row subquery `settings(a, b)`.
pub const SETTINGS: &str = "(SELECT pg_catalog.set_config('workflow.app_id', $1, true) AS a, \
                            pg_catalog.set_config('workflow.admin', $2, true) AS b) AS settings";

/// Placeholders `$3::type, $4::type, …` for the call's arguments.
pub fn placeholders(args: &[Arg]) -> String {
    args.iter().enumerate().map(|(i, a)| format!("${}::{}", i + 3, a.cast())).collect::<Vec<_>>().join(", ")
}

/// `workflow.<function>(args…)::text` in one implicit transaction that first sets the app (and
/// the admin flag) with transaction-local settings: one round trip per request. The CASE makes
/// the settings be evaluated before the function, however the planner arranges the query.
pub fn call_sql(function: &str, args: &[Arg]) -> String {
    format!(
        "SELECT CASE WHEN settings.a IS NOT NULL AND settings.b IS NOT NULL THEN workflow.{function}({})::text END FROM {SETTINGS}",
        placeholders(args)
    )
}

/// Runs a call, retrying serialization failures and deadlocks (errors.md §3).
pub async fn call_rows(state: &AppState, caller: &Caller, sql: &str, args: &[Arg]) -> Result<Vec<tokio_postgres::Row>, ApiError> {
    let app = caller.app.clone().unwrap_or_default();
    let admin = if caller.admin { "on" } else { "off" };
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&app, &admin];
    params.extend(args.iter().map(Arg::sql));
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(80));
    for attempt in 0..4u64 {
        let client = state.pool.get().await.map_err(|e| {
            tracing::warn!(error = %e, "no database connection");
            ApiError::unavailable("Database unavailable")
        })?;
        let stmt = client.prepare_cached(sql).await.map_err(|e| ApiError::from_db(&e))?;
        match client.query(&stmt, &params).await {
            Ok(rows) => return Ok(rows),
            Err(e) if ApiError::retryable(&e) && attempt < 3 => {
                tokio::time::sleep(backoff.next_pause()).await;
            }
            Err(e) if ApiError::retryable(&e) => return Err(ApiError::busy()),
            Err(e) => return Err(ApiError::from_db(&e)),
        }
    }
    Err(ApiError::busy())
}

/// Calls `workflow.<function>` and returns its jsonb result as JSON text.
pub async fn call_text(state: &AppState, caller: &Caller, function: &str, args: &[Arg]) -> Result<String, ApiError> {
    let sql = call_sql(function, args);
    let rows = call_rows(state, caller, &sql, args).await?;
    rows.first().and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten()).ok_or_else(ApiError::internal)
}

pub fn octet_stream(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    r
}
