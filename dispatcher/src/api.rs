//! The HTTP surface. For now: health (`/status`, `/ready`); the façade routes come with issue C.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use deadpool_postgres::Pool;
use serde_json::json;

/// Extension versions this binary speaks.
pub const SUPPORTED_EXTENSION_VERSIONS: &[&str] = &["0.1.0"];

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
}

pub fn app(state: AppState) -> Router {
    Router::new().route("/status", get(status)).route("/ready", get(ready)).with_state(state)
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
