//! Stream writes and reads over HTTP (spec/streams.md). A write is one SQL call; a read is a
//! state call and then chunk reads, repeated for a live read as pings arrive (at least every 5 s).

use super::{call_rows, call_text, octet_stream, ApiError, AppState, Arg, Parsed, SETTINGS};
use crate::auth::Caller;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Chunks fetched per read call.
const READ_BATCH: i32 = 500;
/// A live read re-checks at least this often, in case a ping was lost.
const SAFETY_POLL: Duration = Duration::from_secs(5);

fn flag(parsed: &Parsed, name: &str) -> bool {
    parsed.headers.get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

pub async fn put(state: &AppState, caller: &Caller, parsed: &Parsed) -> Result<Response, ApiError> {
    let (run_id, name) = (parsed.param("runId"), parsed.param("name"));
    let mut query = Map::new();
    if flag(parsed, "x-stream-multi") {
        query.insert("$multi".into(), json!("true"));
    }
    let done = flag(parsed, "x-stream-done");
    if done {
        query.insert("$done".into(), json!("true"));
    }
    let args = |body: Arg| [Arg::Text(run_id.clone()), Arg::Text(name.clone()), Arg::Json(Value::Object(query.clone())), body];
    match parsed.content_type.as_deref() {
        // A close ignores its body, whatever its type.
        _ if done => call_text(state, caller, "stream_put", &args(Arg::Json(json!({})))).await?,
        None | Some("application/json") => call_text(state, caller, "stream_put", &args(Arg::Json(parsed.json_body()?))).await?,
        Some("text/plain" | "application/octet-stream") => {
            call_text(state, caller, "stream_put_bytes", &args(Arg::Bytes(parsed.body.to_vec()))).await?
        }
        Some(other) => return Err(ApiError::unsupported_media(other)),
    };
    Ok(StatusCode::NO_CONTENT.into_response())
}

struct StreamState {
    /// What this stream's `pgworld_stream` pings carry.
    channel: String,
    count: i64,
    closed: bool,
}

async fn stream_state(state: &AppState, caller: &Caller, name: &str) -> Result<StreamState, ApiError> {
    let text = call_text(state, caller, "stream_state", &[Arg::Text(name.to_owned())]).await?;
    let v: Value = serde_json::from_str(&text).map_err(|_| ApiError::internal())?;
    // Extensions before 0.3.0 ping `<app>:<name>` and report no channel.
    let channel = match v["channel"].as_str() {
        Some(c) => c.to_owned(),
        None => format!("{}:{name}", v["app"].as_i64().unwrap_or_default()),
    };
    Ok(StreamState { channel, count: v["count"].as_i64().unwrap_or_default(), closed: v["closed"].as_bool().unwrap_or(false) })
}

async fn chunks_from(state: &AppState, caller: &Caller, name: &str, from: i64) -> Result<Vec<(i64, Vec<u8>)>, ApiError> {
    let args = [Arg::Text(name.to_owned()), Arg::BigInt(from), Arg::Int(READ_BATCH)];
    // The read refers to the settings row, so it runs after the app is set.
    let sql = format!(
        "SELECT r.idx, r.data FROM {SETTINGS}, LATERAL workflow.stream_read(CASE WHEN settings.a IS NOT NULL THEN $3::text END, $4::int8, $5::int4) AS r"
    );
    let rows = call_rows(state, caller, &sql, &args).await?;
    Ok(rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, Vec<u8>>(1))).collect())
}

pub async fn read(state: &AppState, caller: Caller, parsed: &Parsed) -> Result<Response, ApiError> {
    let name = parsed.param("name");
    let start = match parsed.query.get("startIndex").and_then(Value::as_str) {
        None => 0,
        Some(s) => s.trim().parse::<i64>().map_err(|_| ApiError::bad_request("startIndex must be an integer"))?,
    };
    let live = parsed.query.get("stream").and_then(Value::as_str) == Some("true");
    let first = stream_state(state, &caller, &name).await?;
    let from = if start < 0 { (first.count + start).max(0) } else { start };
    if !live {
        let mut body = Vec::new();
        let mut next = from;
        loop {
            let batch = chunks_from(state, &caller, &name, next).await?;
            let done = batch.len() < READ_BATCH as usize;
            for (idx, data) in batch {
                next = idx + 1;
                body.extend_from_slice(&data);
            }
            if done {
                break;
            }
        }
        return Ok(octet_stream(Body::from(body)));
    }
    // Live: subscribe first, then read, so no commit falls between the two unnoticed.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let state = state.clone();
    tokio::spawn(async move {
        let wake = state.hub.subscribe(first.channel.clone());
        let mut next = from;
        loop {
            let s = match stream_state(&state, &caller, &name).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(stream = %name, error = %e.message, "live stream read failed");
                    return;
                }
            };
            while next < s.count {
                match chunks_from(&state, &caller, &name, next).await {
                    Ok(batch) if !batch.is_empty() => {
                        for (idx, data) in batch {
                            next = idx + 1;
                            if tx.send(Ok(Bytes::from(data))).await.is_err() {
                                return; // the client went away
                            }
                        }
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(stream = %name, error = %e.message, "live stream read failed");
                        return;
                    }
                }
            }
            if s.closed && next >= s.count {
                return;
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(SAFETY_POLL) => {}
                () = tx.closed() => return,
            }
        }
    });
    let mut response = octet_stream(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
