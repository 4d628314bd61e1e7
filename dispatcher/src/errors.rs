//! The HTTP error body (spec/errors.md §2) and how database and transport failures map to it
//! (§3). A `WFnnn` SQLSTATE becomes status `nnn` with no per-route logic.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::borrow::Cow;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// The symbolic code: the database's HINT for WF errors, the façade's own otherwise.
    pub code: Cow<'static, str>,
    pub message: String,
    pub meta: Option<Box<Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: Cow::Borrowed(code), message: message.into(), meta: None }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "WF_BAD_REQUEST", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "WF_UNAVAILABLE", message)
    }

    pub fn busy() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "WF_BUSY", "Service busy, retry")
    }

    pub fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "WF_INTERNAL", "Internal Server Error")
    }

    pub fn route_not_found(method: &str, path: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "WF_ROUTE_NOT_FOUND", format!("Route {method}:{path} not found"))
    }

    pub fn too_large() -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "WF_PAYLOAD_TOO_LARGE", "Request body is too large")
    }

    pub fn unsupported_media(content_type: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "WF_UNSUPPORTED_MEDIA_TYPE",
            format!("Unsupported Media Type: {content_type}"),
        )
    }

    /// Maps a database error: WF errors by their SQLSTATE, data errors a client caused to 400,
    /// contention and outages to 503, anything else to a logged 500.
    pub fn from_db(e: &tokio_postgres::Error) -> ApiError {
        let Some(db) = e.as_db_error() else {
            tracing::warn!(error = %error_chain(e), "database unavailable");
            return ApiError::unavailable("Database unavailable");
        };
        let state = db.code().code();
        if let Some(digits) = state.strip_prefix("WF") {
            let status = digits
                .parse::<u16>()
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let meta = db.detail().and_then(|d| serde_json::from_str::<Value>(d).ok()).filter(Value::is_object).map(Box::new);
            return ApiError {
                status,
                code: Cow::Owned(db.hint().unwrap_or_default().to_owned()),
                message: db.message().to_owned(),
                meta,
            };
        }
        match &state[..2] {
            // Data exceptions and program limits come from what the client sent (a NUL byte, a
            // string too long for an index), never from pgworld's own statements.
            "22" | "54" => ApiError::bad_request(format!("invalid input: {}", db.message())),
            "40" | "55" => ApiError::busy(),
            "57" if state == "57014" => ApiError::busy(),
            "57" | "08" | "53" => ApiError::unavailable("Database unavailable"),
            _ => {
                tracing::error!(sqlstate = state, message = db.message(), "internal database error");
                ApiError::internal()
            }
        }
    }

    /// True for errors worth retrying the whole call (serialization failure, deadlock).
    pub fn retryable(e: &tokio_postgres::Error) -> bool {
        e.as_db_error().is_some_and(|d| matches!(d.code().code(), "40001" | "40P01"))
    }

    pub fn body(&self) -> Value {
        let error = if self.status.as_u16() >= 500 { "Internal Server Error".to_owned() } else { self.message.clone() };
        let mut body = json!({"statusCode": self.status.as_u16(), "error": error, "message": self.message, "code": self.code});
        if let Some(meta) = &self.meta {
            body["meta"] = (**meta).clone();
        }
        body
    }
}

/// Whole seconds until an ISO timestamp, rounded up, at least 1 (the Retry-After header).
fn retry_after_seconds(meta: &Value) -> Option<u64> {
    let at = meta.get("retryAfter").and_then(Value::as_str)?;
    let micros = pgworld_core::ts::parse_date("retryAfter", &Value::String(at.to_owned())).ok()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_micros() as i64;
    Some(u64::try_from(((micros - now) as f64 / 1e6).ceil() as i64).unwrap_or(0).max(1))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, json_text(body.to_string())).into_response();
        if matches!(self.status.as_u16(), 425 | 429) {
            if let Some(secs) = self.meta.as_deref().and_then(retry_after_seconds) {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
        }
        response
    }
}

pub fn json_text(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], body)
}

/// An error and its causes on one line, for logs and bodies.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
