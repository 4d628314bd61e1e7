//! Enqueue, dead letters and the messages pgworld writes itself (spec/queue.md §4, §10, §11).

use crate::db::{self, OrInternal, Row};
use crate::{facts, ffi, pings, tenancy};
use pgrx::datum::JsonB;
use pgrx::spi::SpiClient;
use pgrx::Spi;
use pgworld_core::queue::{self, Body, Envelope, MessageFacts, QueueKind};
use pgworld_core::render;
use pgworld_core::{ts, Code, WfError, WfResult};
use serde_json::{json, Value};

pub const DEFAULT_MAX_QUEUE_PER_MINUTE: i64 = 100_000;
/// Rate-window shards: concurrent enqueuers of one app rarely share a row lock.
const RATE_SHARDS: i32 = 32;

pub fn public_id(id: i64) -> String {
    format!("msg_{id}")
}

/// `msg_<n>` or `<n>`.
pub fn parse_public_id(s: &str) -> Option<i64> {
    let digits = s.strip_prefix("msg_").unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

/// `workflow.queue_enqueue(query, body)` and `workflow.queue_enqueue_cbor(query, bytes)`.
pub fn enqueue(env: WfResult<Envelope>) -> WfResult<Value> {
    Spi::connect_mut(|c| {
        let app = tenancy::current_app()?;
        let mut env = env?;
        if env.deployment_id.is_empty() {
            // Sent by a process that serves no version (the WDK's CLI and web UI): to one that can answer.
            env.deployment_id = facts::newest_served(c, app).unwrap_or_default();
        }
        if facts::version_expired(c, app, &env.deployment_id) {
            return Err(facts::expired_error(&env.deployment_id));
        }
        admit_enqueue(c, app)?;
        let delay_micros = (env.delay_seconds * 1_000_000.0).round() as i64;
        let id = insert(c, app, &env, delay_micros).ok_or_else(|| {
            let key = env.idempotency_key.clone().unwrap_or_default();
            WfError::new(Code::DuplicateIdempotencyKey, format!("Idempotency key {key} already processed"))
        })?;
        if delay_micros > 0 {
            let at = ffi::now_micros() + delay_micros;
            Ok(json!({"messageId": public_id(id), "scheduled": true, "deliverAt": ts::to_iso(at)}))
        } else {
            pings::queue(c);
            Ok(json!({"messageId": public_id(id)}))
        }
    })
}

thread_local! {
    /// Where this backend's last counted enqueue left its rate row: (app, shard, ctid). Many
    /// enqueues in one transaction update that one row again and again, and none of its
    /// versions can be pruned before the commit, so finding it by key walks all of them; by
    /// its ctid the update is direct. A stale entry (another transaction, a row moved or
    /// vacuumed, a rolled-back savepoint) simply matches no row.
    static RATE_ROW: std::cell::RefCell<Option<(i32, i16, String)>> = const { std::cell::RefCell::new(None) };
}

/// Counts this enqueue in the app's current minute; rejected enqueues roll back with the error.
fn admit_enqueue(c: &mut SpiClient<'_>, app: i32) -> WfResult<()> {
    let shard = i16::try_from(i32::try_from(std::process::id()).unwrap_or_default().rem_euclid(RATE_SHARDS)).unwrap_or_default();
    let known = RATE_ROW.with(|r| r.borrow().clone()).filter(|(a, s, _)| *a == app && *s == shard).map(|(_, _, t)| t);
    let bumped = known.and_then(|tid| {
        db::update(
            c,
            "UPDATE workflow.queue_rate SET accepted = accepted + 1 \
             WHERE ctid = $1::tid AND application_id = $2 AND window_start = date_trunc('minute', now()) AND shard = $3 \
             RETURNING ctid::text, accepted",
            &[tid.into(), app.into(), shard.into()],
        )
        .next()
        .map(|r| (r.text(1), r.int(2)))
    });
    let (tid, accepted) = match bumped {
        Some(b) => b,
        None => db::update(
            c,
            "INSERT INTO workflow.queue_rate AS r (application_id, window_start, shard, accepted) \
             VALUES ($1, date_trunc('minute', now()), $2, 1) \
             ON CONFLICT (application_id, window_start, shard) DO UPDATE SET accepted = r.accepted + 1 \
             RETURNING ctid::text, accepted",
            &[app.into(), shard.into()],
        )
        .next()
        .map(|r| (r.text(1), r.int(2)))
        .ok_or("no row")
        .or_internal("queue rate count"),
    };
    RATE_ROW.with(|r| *r.borrow_mut() = Some((app, shard, tid)));
    // The other shards by equality, not `shard <> ours`: a range over the key would also walk
    // every version this transaction left of its own row.
    let others: Vec<i16> = (0..RATE_SHARDS).filter_map(|s| i16::try_from(s).ok()).filter(|s| *s != shard).collect();
    let row = db::select(
        c,
        "SELECT (SELECT coalesce(sum(accepted), 0) FROM workflow.queue_rate \
                 WHERE application_id = $1 AND window_start = date_trunc('minute', now()) AND shard = ANY($2))::bigint, \
                (SELECT q.max_queue_per_minute FROM workflow.quotas q WHERE q.application_id = $1)::bigint, \
                date_trunc('minute', now()) + interval '1 minute'",
        &[app.into(), others.into()],
    )
    .next()
    .map(|r| (r.bigint(1), r.opt_bigint(2), r.ts(3)));
    let Some((others, quota, window_end)) = row else {
        return Ok(());
    };
    if i64::from(accepted) + others > quota.unwrap_or(DEFAULT_MAX_QUEUE_PER_MINUTE) {
        let retry = window_end.map(ts::to_iso);
        return Err(WfError::new(Code::QueueRate, "Queue rate limit exceeded").with_meta(json!({"retryAfter": retry})));
    }
    Ok(())
}

/// Writes the message and its body; None when the idempotency key is taken in this app.
fn insert(c: &mut SpiClient<'_>, app: i32, env: &Envelope, delay_micros: i64) -> Option<i64> {
    let (kind, namespace) = queue::classify(&env.queue_name);
    let (encoding, body_json, body_cbor) = match &env.body {
        Body::Json(v) => ("json", Some(JsonB(v.clone())), None),
        Body::Cbor(b) => ("cbor", None, Some(b.clone())),
    };
    let headers = (!env.headers.is_empty()).then(|| JsonB(Value::Object(env.headers.clone())));
    db::update(
        c,
        "WITH m AS (INSERT INTO workflow.messages (application_id, state, kind, queue_name, run_id, deployment_version, \
                                                   available_at, created_at, updated_at) \
                    VALUES ($1, CASE WHEN $2 > 0 THEN 'deferred' ELSE 'pending' END, $3, $4, $5, $6, \
                            now() + make_interval(secs => $2::float8 / 1e6), now(), now()) RETURNING id) \
         INSERT INTO workflow.message_bodies (id, application_id, encoding, body_json, body_cbor, headers, idempotency_key, \
                                              step_id, health_check, namespace) \
         SELECT m.id, $1, $7, $8, $9, $10, $11, $12, $13, $14 FROM m \
         ON CONFLICT (application_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id",
        &[
            app.into(),
            delay_micros.into(),
            kind.as_str().into(),
            env.queue_name.as_str().into(),
            env.facts.run_id.as_str().into(),
            env.deployment_id.as_str().into(),
            encoding.into(),
            body_json.into(),
            body_cbor.into(),
            headers.into(),
            env.idempotency_key.clone().into(),
            env.facts.step_id.clone().into(),
            env.facts.health_check.into(),
            namespace.into(),
        ],
    )
    .next()
    .map(|r| r.bigint(1))
}

/// A message pgworld writes itself (continuations, replays, wake-ups): never rate-counted,
/// due now, `{"runId": …}` in the requested encoding.
pub fn enqueue_continuation(c: &mut SpiClient<'_>, app: i32, queue_name: &str, run_id: &str, version: &str, cbor: bool) -> i64 {
    let env = envelope(queue_name, version, json!({"runId": run_id}), cbor);
    let id = insert(c, app, &env, 0).ok_or("no row").or_internal("continuation insert");
    pings::queue(c);
    id
}

/// A message due now for `version`, in CBOR (byte envelopes as byte strings) or JSON.
pub fn envelope(queue_name: &str, version: &str, message: Value, cbor: bool) -> Envelope {
    Envelope {
        queue_name: queue_name.to_owned(),
        body: if cbor { Body::Cbor(pgworld_core::cbor::from_json(&message)) } else { Body::Json(message.clone()) },
        facts: MessageFacts::of(&message),
        deployment_id: version.to_owned(),
        idempotency_key: None,
        delay_seconds: 0.0,
        headers: serde_json::Map::new(),
    }
}

pub fn kind_of(s: &str) -> QueueKind {
    QueueKind::parse(s).unwrap_or(QueueKind::Other)
}

const DEAD_LETTER_COLS: &str = "m.id, b.idempotency_key, m.queue_name, m.run_id, m.deployment_version, b.encoding, b.body_json, \
     m.attempts, b.last_failure, m.dead_at, m.failure_finalized_at, m.created_at";

fn dead_letter_json(r: &pgrx::spi::SpiHeapTupleData<'_>) -> Value {
    let iso = |i: usize| r.ts(i).map(ts::to_iso);
    json!({
        "messageId": public_id(r.bigint(1)),
        "idempotencyKey": r.opt_text(2),
        "queueName": r.text(3),
        "runId": r.text(4),
        "deploymentVersion": r.text(5),
        "payloadEncoding": r.text(6),
        "payload": r.json(7),
        "attempts": r.int(8),
        "lastFailure": r.json(9),
        "deadAt": iso(10),
        "failureFinalizedAt": iso(11),
        "createdAt": iso(12),
    })
}

/// `workflow.dead_letters_list(query)`: newest first, cursor = last id of the page.
pub fn dead_letters_list(q: &Value) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    let page = pgworld_core::request::parse_page(q, 50, 200, true)?;
    let limit = page.limit;
    let before = match page.cursor {
        None => i64::MAX,
        Some(s) => s.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| WfError::bad_request("invalid cursor"))?,
    };
    let queue_name = match q.get("queueName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(WfError::bad_request("queueName must be a string")),
    };
    Spi::connect(|c| {
        let sql = format!(
            "SELECT {DEAD_LETTER_COLS} FROM workflow.messages m JOIN workflow.message_bodies b ON b.id = m.id \
             WHERE m.application_id = $1 AND m.state = 'dead' AND m.id < $2 AND ($3::text IS NULL OR m.queue_name = $3) \
             ORDER BY m.id DESC LIMIT $4"
        );
        let rows: Vec<Value> = db::select(c, &sql, &[app.into(), before.into(), queue_name.into(), (limit + 1).into()])
            .map(|r| dead_letter_json(&r))
            .collect();
        let has_more = rows.len() as i64 > limit;
        let page: Vec<Value> = rows.into_iter().take(usize::try_from(limit).unwrap_or_default()).collect();
        let cursor = if has_more {
            page.last().and_then(|v| v["messageId"].as_str()).and_then(parse_public_id).map(|n| n.to_string())
        } else {
            None
        };
        Ok(render::page(page, cursor, has_more))
    })
}

/// `workflow.dead_letter_retry(message_id)`: a dead, not finalized message becomes due again.
pub fn dead_letter_retry(message_id: &str) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    let id = parse_public_id(message_id).ok_or_else(|| WfError::bad_request("invalid messageId"))?;
    Spi::connect_mut(|c| {
        let row = db::update(
            c,
            "SELECT state, failure_finalized_at IS NOT NULL, deployment_version FROM workflow.messages \
             WHERE application_id = $1 AND id = $2 FOR UPDATE",
            &[app.into(), id.into()],
        )
        .next()
        .map(|r| (r.text(1), r.flag(2), r.text(3)));
        let Some((state, finalized, version)) = row else {
            return Err(WfError::new(Code::MessageNotFound, format!("Message {message_id} not found")));
        };
        if state != "dead" || finalized {
            return Err(WfError::new(
                Code::MessageNotRetryable,
                format!("Message {message_id} is not dead or its failure is already finalized"),
            ));
        }
        if facts::version_expired(c, app, &version) {
            return Err(facts::expired_error(&version));
        }
        db::update(
            c,
            "UPDATE workflow.messages SET state = 'pending', attempts = 0, available_at = now(), dead_at = NULL, \
             unroutable_since = NULL, updated_at = now() WHERE id = $1",
            &[id.into()],
        );
        db::update(c, "UPDATE workflow.message_bodies SET last_failure = NULL WHERE id = $1", &[id.into()]);
        pings::queue(c);
        Ok(json!({"retried": true, "messageId": public_id(id)}))
    })
}
