//! Public routes (http-api.md §4.1): `/status`, `/ready` and `/metrics`; never authenticated.

use super::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// Extension versions this binary speaks.
pub const SUPPORTED_EXTENSION_VERSIONS: &[&str] = &["0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0"];

pub fn router() -> Router<AppState> {
    Router::new().route("/status", get(status)).route("/ready", get(ready)).route("/metrics", get(metrics))
}

async fn status() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

fn unavailable(reason: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "reason": reason}))).into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    let client = match state.pool.get().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: no database connection");
            return unavailable("database unreachable".into());
        }
    };
    match client.query_opt("SELECT extversion FROM pg_extension WHERE extname = 'pgworld'", &[]).await {
        Ok(Some(row)) => {
            let version: String = row.get(0);
            if SUPPORTED_EXTENSION_VERSIONS.contains(&version.as_str()) {
                Json(json!({"status": "ok"})).into_response()
            } else {
                unavailable(format!("extension pgworld {version} is not supported by this dispatcher"))
            }
        }
        Ok(None) => unavailable("extension pgworld is not installed".into()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness query failed");
            unavailable("database query failed".into())
        }
    }
}

/// Prometheus text: the process's counters and histograms, plus gauges read from the database
/// (`workflow.metrics()`); a database outage leaves the gauges out rather than failing the scrape.
async fn metrics(State(state): State<AppState>) -> Response {
    let gauges = match state.pool.get().await {
        Ok(c) => c.query_one("SELECT workflow.metrics()", &[]).await.ok().and_then(|r| r.try_get::<_, serde_json::Value>(0).ok()),
        Err(_) => None,
    };
    let text = state.metrics.render(gauges.as_ref());
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], text).into_response()
}
