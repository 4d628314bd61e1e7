//! Streams (spec/streams.md): ordered byte chunks per (app, name) with a close marker. Writes
//! serialize on the stream row; each write and close pings `pgworld_stream` (see `pings`).

use crate::db::{self, OrInternal, Row};
use crate::tenancy;
use base64::{engine::general_purpose::STANDARD, Engine};
use pgrx::spi::SpiClient;
use pgrx::Spi;
use pgworld_core::request::decimal_cursor;
use pgworld_core::streams::{self, check_name};
use pgworld_core::{Code, WfError, WfResult};
use serde_json::{json, Value};

fn flag(query: &Value, name: &str) -> bool {
    query.get(name).and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `workflow.stream_put(run_id, name, query, body)`: a JSON write, multi write or close.
pub fn put_json(run_id: &str, name: &str, query: &Value, body: &Value) -> WfResult<Value> {
    let done = flag(query, "$done");
    let chunks = if done { Vec::new() } else { streams::json_chunks(body, flag(query, "$multi"))? };
    write(run_id, name, chunks, done)
}

/// `workflow.stream_put_bytes(run_id, name, query, bytes)`: one raw chunk, or a close.
pub fn put_bytes(run_id: &str, name: &str, query: &Value, bytes: &[u8]) -> WfResult<Value> {
    let done = flag(query, "$done");
    write(run_id, name, if done { Vec::new() } else { vec![bytes.to_vec()] }, done)
}

fn write(run_id: &str, name: &str, chunks: Vec<Vec<u8>>, close: bool) -> WfResult<Value> {
    check_name(name)?;
    let app = tenancy::current_app()?;
    Spi::connect_mut(|c| {
        // The first write or close creates the stream and names its owning run.
        db::update(
            c,
            "INSERT INTO workflow.streams (application_id, name, run_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[app.into(), name.into(), run_id.into()],
        );
        let (count, closed) = db::update(
            c,
            "SELECT chunk_count, closed FROM workflow.streams WHERE application_id = $1 AND name = $2 FOR UPDATE",
            &[app.into(), name.into()],
        )
        .next()
        .map(|r| (r.bigint(1), r.flag(2)))
        .ok_or("no row")
        .or_internal("stream row after its insert");
        if closed {
            return if close { Ok(json!({})) } else { Err(WfError::new(Code::StreamClosed, "stream is already closed")) };
        }
        let n = chunks.len() as i64;
        if n > 0 {
            let data: Vec<Vec<u8>> = chunks;
            db::update(
                c,
                "INSERT INTO workflow.stream_chunks (application_id, name, idx, data) \
                 SELECT $1, $2, $3 + o - 1, d FROM unnest($4::bytea[]) WITH ORDINALITY AS u(d, o)",
                &[app.into(), name.into(), count.into(), data.into()],
            );
        }
        db::update(
            c,
            "UPDATE workflow.streams SET chunk_count = chunk_count + $3, closed = closed OR $4, updated_at = now() \
             WHERE application_id = $1 AND name = $2",
            &[app.into(), name.into(), n.into(), close.into()],
        );
        crate::pings::stream(c, app, name);
        Ok(json!({}))
    })
}

/// (exists, chunk count, closed) of a stream of the current app.
fn state_of(c: &SpiClient<'_>, app: i32, name: &str) -> (bool, i64, bool) {
    db::select(
        c,
        "SELECT chunk_count, closed FROM workflow.streams WHERE application_id = $1 AND name = $2",
        &[app.into(), name.into()],
    )
    .next()
    .map_or((false, 0, false), |r| (true, r.bigint(1), r.flag(2)))
}

/// `workflow.stream_state(name)`: `{exists, count, closed, app, channel}`; `channel` is what the
/// stream's `pgworld_stream` pings carry, so a live reader knows which pings are its own.
pub fn state(name: &str) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    Spi::connect(|c| {
        let (exists, count, closed) = state_of(c, app, name);
        let channel = crate::pings::stream_channel(c, app, name);
        Ok(json!({"exists": exists, "count": count, "closed": closed, "app": app, "channel": channel}))
    })
}

/// `workflow.stream_read(name, from, max)`: chunks with index ≥ `from`, in order.
pub fn read(name: &str, from: i64, max: i32) -> WfResult<Vec<(i64, Vec<u8>)>> {
    let app = tenancy::current_app()?;
    Spi::connect(|c| {
        Ok(db::select(
            c,
            "SELECT idx, data FROM workflow.stream_chunks WHERE application_id = $1 AND name = $2 AND idx >= $3 ORDER BY idx LIMIT $4",
            &[app.into(), name.into(), from.max(0).into(), i64::from(max.clamp(1, 10_000)).into()],
        )
        .map(|r| (r.bigint(1), r.bytes(2)))
        .collect())
    })
}

/// `workflow.streams_list(run_id)`: names of the streams the run owns, oldest first.
pub fn list(run_id: &str) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    Spi::connect(|c| {
        let names: Vec<Value> = db::select(
            c,
            "SELECT name FROM workflow.streams WHERE application_id = $1 AND run_id = $2 ORDER BY created_at, name",
            &[app.into(), run_id.into()],
        )
        .map(|r| Value::String(r.text(1)))
        .collect();
        Ok(Value::Array(names))
    })
}

/// `workflow.stream_info(run_id, name)`: looked up by name only.
pub fn info(name: &str) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    Spi::connect(|c| {
        let (_, count, closed) = state_of(c, app, name);
        Ok(json!({"tailIndex": count - 1, "done": closed}))
    })
}

/// `workflow.stream_chunks(run_id, name, query)`: a page of base64 chunks after `cursor`.
pub fn chunks(name: &str, query: &Value) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    // Clamped, never rejected, for compatibility (streams.md §7).
    let limit = match query.get("limit") {
        Some(Value::String(s)) => s.trim().parse::<i64>().unwrap_or(100),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(100),
        _ => 100,
    }
    .clamp(1, 1000);
    let cursor = match query.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(WfError::bad_request("invalid cursor")),
    };
    let after = decimal_cursor(&cursor)?.unwrap_or(-1);
    Spi::connect(|c| {
        let (_, _, closed) = state_of(c, app, name);
        let rows: Vec<(i64, Vec<u8>)> = db::select(
            c,
            "SELECT idx, data FROM workflow.stream_chunks WHERE application_id = $1 AND name = $2 AND idx > $3 ORDER BY idx LIMIT $4",
            &[app.into(), name.into(), after.into(), (limit + 1).into()],
        )
        .map(|r| (r.bigint(1), r.bytes(2)))
        .collect();
        let has_more = rows.len() as i64 > limit;
        let page: Vec<(i64, Vec<u8>)> = rows.into_iter().take(usize::try_from(limit).unwrap_or_default()).collect();
        let cursor = if has_more { page.last().map(|(i, _)| i.to_string()) } else { None };
        let data: Vec<Value> = page.iter().map(|(i, d)| json!({"index": i, "data": STANDARD.encode(d)})).collect();
        Ok(json!({"data": data, "cursor": cursor, "hasMore": has_more, "done": closed}))
    })
}

/// Rows of a stream from an index; the public wrapper checks the app first, so a failure here
/// is a fault, not an empty stream.
#[pgrx::pg_extern(stable, parallel_safe, name = "_stream_read")]
fn stream_read(
    name: &str,
    from_index: i64,
    max_chunks: i32,
) -> pgrx::iter::TableIterator<'static, (pgrx::name!(idx, i64), pgrx::name!(data, Vec<u8>))> {
    match read(name, from_index, max_chunks) {
        Ok(rows) => pgrx::iter::TableIterator::new(rows),
        Err(e) => pgrx::error!("pgworld internal error (stream read): {}", e.message),
    }
}
