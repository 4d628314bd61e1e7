//! The dispatcher's side of the queue (spec/queue.md §5, §8, §9): outcomes of leased messages,
//! failures with the retry schedule, and what a dead message does to its run (claims: claim.rs).
//! These act across apps (dispatchers serve every app) and are granted to pgworld_service only.

use crate::db::{self, Row};
use crate::queue::{self as q, kind_of};
use crate::{events, ffi, runs, tenancy};
use pgrx::datum::JsonB;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::Uuid;
use pgworld_core::payload::Mode;
use pgworld_core::queue::{self, Failure, Outcome, QueueKind};
use pgworld_core::{cbor, ts, WfResult};
use serde_json::{json, Value};

/// The message fields a state change needs.
#[derive(Clone)]
pub struct Held {
    id: i64,
    app: i32,
    kind: QueueKind,
    queue_name: String,
    run_id: String,
    version: String,
    attempts: i32,
}

pub const HELD_COLS: &str = "m.id, m.application_id, m.kind, m.queue_name, m.run_id, m.deployment_version, m.attempts";

pub fn held_from(r: &pgrx::spi::SpiHeapTupleData<'_>) -> Held {
    Held {
        id: r.bigint(1),
        app: r.int(2),
        kind: kind_of(&r.text(3)),
        queue_name: r.text(4),
        run_id: r.text(5),
        version: r.text(6),
        attempts: r.int(7),
    }
}

/// `workflow.dispatch_complete(lease_id, outcome)`: false when the lease is no longer held.
#[pg_extern(volatile, parallel_unsafe, name = "_dispatch_complete")]
fn dispatch_complete(lease_id: Uuid, outcome: &str) -> JsonB {
    crate::respond(
        crate::arg("outcome", outcome)
            .and_then(|o| Outcome::from_json(&o))
            .map(|o| tenancy::with_cross_app(|| Spi::connect_mut(|c| json!(complete(c, lease_id, &o))))),
    )
}

fn complete(c: &mut SpiClient<'_>, lease_id: Uuid, outcome: &Outcome) -> bool {
    let sql = format!("SELECT {HELD_COLS} FROM workflow.messages m WHERE m.lease_id = $1 AND m.state = 'leased' FOR UPDATE");
    let Some(m) = db::update(c, &sql, &[lease_id.into()]).next().map(|r| held_from(&r)) else {
        return false;
    };
    match outcome {
        Outcome::Delivered => {
            db::update(
                c,
                "UPDATE workflow.messages SET state = 'delivered', delivered_at = now(), updated_at = now(), \
                 lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
                &[m.id.into()],
            );
        }
        Outcome::RescheduleAfter(seconds) => reschedule(c, &m, *seconds),
        Outcome::TooEarly(at) => {
            let now_ms = ffi::now_micros() as f64 / 1000.0;
            reschedule(c, &m, queue::too_early_delay_seconds(*at, now_ms));
        }
        Outcome::Failed(f) => record_failure(c, &m, f),
    }
    true
}

/// The same message due again later: same id, attempts unchanged (queue.md §8.1). A version
/// expired meanwhile discards the re-schedule.
fn reschedule(c: &mut SpiClient<'_>, m: &Held, seconds: f64) {
    if q::version_expired(c, m.app, &m.version) {
        kill(c, m, &version_expired_failure());
        return;
    }
    db::update(
        c,
        "UPDATE workflow.messages SET state = CASE WHEN $2 > 0 THEN 'deferred' ELSE 'pending' END, \
         available_at = now() + make_interval(secs => $2), updated_at = now(), \
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
        &[m.id.into(), seconds.into()],
    );
    if seconds <= 0.0 {
        crate::pings::queue(c);
    }
}

pub fn version_expired_failure() -> Failure {
    Failure::decided("VERSION_EXPIRED", "deployment version expired")
}

/// A failed delivery: retry with backoff, or dead and finalized at the 10th (queue.md §8.2, §9).
pub fn record_failure(c: &mut SpiClient<'_>, m: &Held, f: &Failure) {
    let attempts = m.attempts + 1;
    if attempts >= queue::MAX_ATTEMPTS {
        kill_finalized(c, &Held { attempts, ..m.clone() }, f);
        return;
    }
    let detail = queue::failure_detail(f, &ts::to_iso(ffi::now_micros()), attempts, &m.queue_name, &m.version);
    db::update(
        c,
        "UPDATE workflow.messages SET state = 'retrying', attempts = $2, \
         available_at = now() + make_interval(secs => $3::float8 / 1000), updated_at = now(), \
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
        &[m.id.into(), attempts.into(), queue::backoff_ms(attempts).into()],
    );
    db::update(c, "UPDATE workflow.message_bodies SET last_failure = $2 WHERE id = $1", &[m.id.into(), JsonB(detail).into()]);
}

/// Dead for good: retries exhausted or no route (queue.md §9).
/// A message whose death changed no run or step (webhooks, health checks, runs gone or already
/// finished) is not finalized, so an operator can still retry it from the dead letters.
pub fn kill_finalized(c: &mut SpiClient<'_>, m: &Held, f: &Failure) {
    kill(c, m, f);
    if finalize(c, m, f) {
        db::update(c, "UPDATE workflow.messages SET failure_finalized_at = now() WHERE id = $1", &[m.id.into()]);
    }
}

/// Makes a message dead with a failure, retryable until something finalizes it.
pub fn kill(c: &mut SpiClient<'_>, m: &Held, f: &Failure) {
    let detail = queue::failure_detail(f, &ts::to_iso(ffi::now_micros()), m.attempts, &m.queue_name, &m.version);
    db::update(
        c,
        "UPDATE workflow.messages SET state = 'dead', attempts = $2, dead_at = now(), updated_at = now(), \
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
        &[m.id.into(), m.attempts.into()],
    );
    db::update(c, "UPDATE workflow.message_bodies SET last_failure = $2 WHERE id = $1", &[m.id.into(), JsonB(detail).into()]);
}

/// Kills, not finalized, every message `SELECT … FROM <rows>` locks (`rows` names the messages
/// table `m` and ends with its locking clause); returns how many.
pub fn kill_all(c: &mut SpiClient<'_>, rows: &str, args: &[pgrx::datum::DatumWithOid<'_>], f: &Failure) -> usize {
    let doomed: Vec<Held> = db::update(c, &format!("SELECT {HELD_COLS} FROM {rows}"), args).map(|r| held_from(&r)).collect();
    for m in &doomed {
        kill(c, m, f);
    }
    doomed.len()
}

/// What a finalized dead message does to its run or step (queue.md §9). Event writes go through
/// the event machinery, acting for the message's app, so every rule of events.md applies.
fn finalize(c: &mut SpiClient<'_>, m: &Held, f: &Failure) -> bool {
    if m.kind == QueueKind::Other || m.run_id.is_empty() {
        return false;
    }
    let body = db::select(
        c,
        "SELECT health_check, step_id, namespace, encoding, body_json, body_cbor FROM workflow.message_bodies WHERE id = $1",
        &[m.id.into()],
    )
    .next()
    .map(|r| {
        (r.boolean(1).unwrap_or(false), r.opt_text(2), r.opt_text(3), r.text(4), r.json(5), r.get::<Vec<u8>>(6).ok().flatten())
    });
    let Some((health_check, step_id, namespace, encoding, body_json, body_cbor)) = body else {
        return false;
    };
    if health_check {
        return false;
    }
    let message = body_json.or_else(|| body_cbor.and_then(|b| cbor::to_json(&b).ok())).unwrap_or(Value::Null);
    tenancy::acting_for(m.app, || {
        let mut run = runs::run_facts(c, m.app, &m.run_id).ok();
        if run.is_none() && m.kind == QueueKind::Workflow {
            if let Some(input @ Value::Object(_)) = message.get("runInput") {
                // A run that never got created is created as a resilient start would, so it can fail.
                let _ = create_event(&m.run_id, json!({"eventType": "run_started", "eventData": input}));
                run = runs::run_facts(c, m.app, &m.run_id).ok();
            }
        }
        let Some(run) = run.filter(|r| !r.is_terminal()) else {
            return false;
        };
        let error = queue::delivery_error(run.spec_version, "QueueDeliveryError", &f.message, &f.code).to_wire(Mode::Envelope);
        if let Some(step_id) = step_id {
            let step = db::select(
                c,
                "SELECT step_name, status IN ('completed', 'failed', 'cancelled') FROM workflow.steps \
                 WHERE application_id = $1 AND run_id = $2 AND step_id = $3",
                &[m.app.into(), m.run_id.as_str().into(), step_id.as_str().into()],
            )
            .next()
            .map(|r| (r.text(1), r.boolean(2).unwrap_or(true)));
            if let Some((step_name, false)) = step {
                let _ = create_event(
                    &m.run_id,
                    json!({"eventType": "step_failed", "correlationId": step_id, "eventData": {"error": error, "stepName": step_name}}),
                );
            }
            let queue_name = queue::workflow_queue(namespace.as_deref(), &run.workflow_name);
            q::enqueue_continuation(c, m.app, &queue_name, &m.run_id, &m.version, encoding == "cbor");
        } else {
            let _ = create_event(
                &m.run_id,
                json!({"eventType": "run_failed", "eventData": {"error": error, "errorCode": "MAX_DELIVERIES_EXCEEDED"}}),
            );
        }
        true
    })
}

/// An event pgworld writes on a run's behalf, in envelope payload mode. A rule refusing it (the
/// run moved on concurrently) is not an error for the caller: the event is simply not needed.
pub fn create_event(run_id: &str, body: Value) -> WfResult<Value> {
    events::event_create(run_id, &json!({"$payload": "envelope"}), &body)
}

/// The lease ids of an argument array; a NULL element names no lease.
fn held(lease_ids: &Array<'_, Uuid>) -> Vec<Uuid> {
    lease_ids.iter().flatten().collect()
}

/// `workflow.dispatch_renew(lease_ids, lease_seconds)`: extends the leases still held; returns
/// how many were.
#[pg_extern(volatile, parallel_unsafe, name = "_dispatch_renew")]
fn dispatch_renew(lease_ids: Array<'_, Uuid>, lease_seconds: f64) -> i64 {
    let lease_ids = held(&lease_ids);
    let lease_seconds = if lease_seconds.is_finite() { lease_seconds.clamp(0.1, 86_400.0) } else { 60.0 };
    tenancy::with_cross_app(|| {
        Spi::connect_mut(|c| {
            db::update(
                c,
                "UPDATE workflow.messages SET lease_expires_at = now() + make_interval(secs => $2) \
                 WHERE lease_id = ANY($1) AND state = 'leased' RETURNING 1",
                &[lease_ids.into(), lease_seconds.into()],
            )
            .len() as i64
        })
    })
}

/// `workflow.dispatch_delivered(lease_ids)`: plain 2xx outcomes in one statement, the hot path
/// of a busy dispatcher. Leases no longer held are skipped, as in `dispatch_complete`.
#[pg_extern(volatile, parallel_unsafe, name = "_dispatch_delivered")]
fn dispatch_delivered(lease_ids: Array<'_, Uuid>) -> i64 {
    let lease_ids = held(&lease_ids);
    tenancy::with_cross_app(|| {
        Spi::connect_mut(|c| {
            db::update(
                c,
                "UPDATE workflow.messages SET state = 'delivered', delivered_at = now(), updated_at = now(), \
                 lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE lease_id = ANY($1) AND state = 'leased' RETURNING 1",
                &[lease_ids.into()],
            )
            .len() as i64
        })
    })
}
