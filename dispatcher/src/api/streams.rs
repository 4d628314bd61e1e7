//! Stream writes and reads over HTTP (spec/streams.md). A write is one SQL call; a read is a
//! state call and then chunk reads, repeated for a live read as pings arrive (at least every 5 s).

use super::{call_rows, call_text, octet_stream, ApiError, AppState, Arg, Parsed, SETTINGS};
use crate::auth::Caller;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Chunks fetched per read call at most.
const READ_BATCH: i32 = 500;
/// Reads fetch fewer chunks per call while their batches hold more than this many bytes.
const READ_BATCH_BYTES: usize = 256 * 1024;
/// Body frames a read holds ready for a slow client.
const IN_FLIGHT: usize = 2;
/// Small chunks go out together, in body frames of about this size.
const FRAME_BYTES: usize = 64 * 1024;
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

async fn chunks_from(
    state: &AppState,
    caller: &Caller,
    name: &str,
    from: i64,
    max: i32,
) -> Result<Vec<(i64, Vec<u8>)>, ApiError> {
    let args = [Arg::Text(name.to_owned()), Arg::BigInt(from), Arg::Int(max)];
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
        return Ok(octet_stream(Body::from_stream(snapshot(state.clone(), caller, name, from))));
    }
    // Live: subscribe first, then read, so no commit falls between the two unnoticed.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
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
            if next < s.count {
                match pump(&state, &caller, &name, next, &tx).await {
                    Ok(after) => next = after,
                    Err(_) => return,
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

/// A snapshot read as a body stream, fetched batch by batch while the client reads. A database
/// error part-way ends the body early (the status line is already sent).
fn snapshot(
    state: AppState,
    caller: Caller,
    name: String,
    from: i64,
) -> tokio_stream::wrappers::ReceiverStream<Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    tokio::spawn(async move {
        if let Err(Cut::Failed) = pump(&state, &caller, &name, from, &tx).await {
            // A send error means the client is gone already; nobody is left to tell.
            let _client_gone = tx.send(Err(std::io::Error::other("stream read failed"))).await;
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Why `pump` stopped before the end of the stream.
enum Cut {
    ClientGone,
    Failed,
}

/// Sends every chunk from index `next` on to `tx`, and returns the index after the last one.
/// Batches shrink while they hold more than `READ_BATCH_BYTES` and grow while they hold less,
/// and small chunks go out together in frames, so a reader holds little memory at a time
/// however long the stream or large its chunks.
async fn pump(
    state: &AppState,
    caller: &Caller,
    name: &str,
    mut next: i64,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<i64, Cut> {
    let mut batch = 4;
    loop {
        let chunks = chunks_from(state, caller, name, next, batch).await.map_err(|e| {
            tracing::warn!(stream = %name, error = %e.message, "stream read failed");
            Cut::Failed
        })?;
        let done = chunks.len() < batch as usize;
        let bytes: usize = chunks.iter().map(|(_, d)| d.len()).sum();
        let mut frame = Vec::new();
        for (idx, data) in chunks {
            next = idx + 1;
            let out = if data.len() >= FRAME_BYTES && frame.is_empty() {
                Some(data)
            } else {
                frame.extend_from_slice(&data);
                (frame.len() >= FRAME_BYTES).then(|| std::mem::take(&mut frame))
            };
            if let Some(out) = out {
                tx.send(Ok(Bytes::from(out))).await.map_err(|_| Cut::ClientGone)?;
            }
        }
        if !frame.is_empty() {
            tx.send(Ok(Bytes::from(frame))).await.map_err(|_| Cut::ClientGone)?;
        }
        if done {
            return Ok(next);
        }
        batch = if bytes > READ_BATCH_BYTES { (batch / 2).max(1) } else { (batch * 2).min(READ_BATCH) };
    }
}
