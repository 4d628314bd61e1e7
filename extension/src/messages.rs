//! The adapter of the queue planner (`pgworld_core::queue::plan`): it reads a held message and
//! the facts the rules need, asks the planner, and applies the change, then the finalization of
//! a dead message. Every state change of a leased or waiting message goes through `settle`.

use crate::db::{self, Row};
use crate::{events, facts, ffi, pings, queue as q, tenancy};
use pgrx::datum::{DatumWithOid, JsonB};
use pgrx::spi::{SpiClient, SpiHeapTupleData};
use pgworld_core::queue::plan::{
    self, Change, Context, DeadBody, FinalWrite, Finality, Finalization, Happening, RunSide, StepSide,
};
use pgworld_core::queue::{Failure, Outcome, QueueKind};
use pgworld_core::{cbor, ts, WfResult};
use serde_json::Value;

/// A message row locked by the caller.
#[derive(Clone)]
pub struct HeldRow {
    pub id: i64,
    pub app: i32,
    /// None: the message names no run (the column stores that as '').
    pub run_id: Option<String>,
    pub held: plan::Held,
    /// The lease, while the message is leased.
    pub lease: Option<pgrx::Uuid>,
}

/// The columns [`held_from`] reads, in order, from a messages row aliased `m`.
pub const HELD_COLS: &str =
    "m.id, m.application_id, m.kind, m.queue_name, m.run_id, m.deployment_version, m.attempts, m.lease_id";

pub fn held_from(r: &SpiHeapTupleData<'_>) -> HeldRow {
    let run_id = r.text(5);
    HeldRow {
        id: r.bigint(1),
        app: r.int(2),
        run_id: Some(run_id).filter(|s| !s.is_empty()),
        held: plan::Held { kind: q::kind_of(&r.text(3)), queue_name: r.text(4), version: r.text(6), attempts: r.int(7) },
        lease: r.opt_uuid(8),
    }
}

/// Plans and applies what `what` makes of a held message.
pub fn settle(c: &mut SpiClient<'_>, m: &HeldRow, what: &Happening) {
    let reschedules = matches!(what, Happening::Reported(Outcome::RescheduleAfter(_) | Outcome::TooEarly(_)));
    let now = ffi::now_micros();
    let ctx = Context {
        version_expired: reschedules && facts::version_expired(c, m.app, &m.held.version),
        now_ms: now as f64 / 1000.0,
        now_iso: ts::to_iso(now),
    };
    let change = plan::plan(&m.held, what, &ctx);
    apply(c, m.id, &change);
    // Every change ends the lease (its pod's slot is freed when this commits).
    if let Some(lease) = &m.lease {
        crate::pods::lease_ended(lease);
    }
    if let Change::Dead { failure, finalize: true, .. } = &change {
        if finalize(c, m, failure) {
            db::update(c, "UPDATE workflow.messages SET failure_finalized_at = now() WHERE id = $1", &[m.id.into()]);
        }
    }
}

/// Settles every message `SELECT … FROM <rows>` locks (`rows` names the messages table `m` and
/// ends with its locking clause) the same way; returns how many.
pub fn settle_all(c: &mut SpiClient<'_>, rows: &str, args: &[DatumWithOid<'_>], what: &Happening) -> usize {
    let held: Vec<HeldRow> = db::update(c, &format!("SELECT {HELD_COLS} FROM {rows}"), args).map(|r| held_from(&r)).collect();
    for m in &held {
        settle(c, m, what);
    }
    held.len()
}

/// Ends a lease, whatever comes next.
macro_rules! lease_ended {
    () => {
        "lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL"
    };
}

/// A delivery's SET list, shared by the planner's path and the batch path (`dispatch_delivered`).
macro_rules! delivered {
    () => {
        concat!("UPDATE workflow.messages SET state = 'delivered', delivered_at = now(), updated_at = now(), ", lease_ended!())
    };
}

/// Plain 2xx outcomes of many leases in one statement; leases no longer held are skipped.
pub const DELIVER_LEASES: &str = concat!(delivered!(), " WHERE lease_id = ANY($1) AND state = 'leased' RETURNING 1");

fn apply(c: &mut SpiClient<'_>, id: i64, change: &Change) {
    let state = change.state().as_str();
    match change {
        Change::Delivered => {
            db::update(c, concat!(delivered!(), " WHERE id = $1"), &[id.into()]);
        }
        Change::DueIn { seconds } => {
            db::update(
                c,
                concat!(
                    "UPDATE workflow.messages SET state = $2, available_at = now() + make_interval(secs => $3), updated_at = now(), ",
                    lease_ended!(),
                    " WHERE id = $1"
                ),
                &[id.into(), state.into(), (*seconds).into()],
            );
            if change.due_now() {
                pings::queue(c);
            }
        }
        Change::Retry { attempts, delay_ms, detail } => {
            db::update(
                c,
                concat!(
                    "UPDATE workflow.messages SET state = $2, attempts = $3, ",
                    "available_at = now() + make_interval(secs => $4::float8 / 1000), updated_at = now(), ",
                    lease_ended!(),
                    " WHERE id = $1"
                ),
                &[id.into(), state.into(), (*attempts).into(), (*delay_ms).into()],
            );
            record_failure(c, id, detail);
        }
        Change::Dead { attempts, detail, .. } => {
            db::update(
                c,
                concat!(
                    "UPDATE workflow.messages SET state = $2, attempts = $3, dead_at = now(), updated_at = now(), ",
                    lease_ended!(),
                    " WHERE id = $1"
                ),
                &[id.into(), state.into(), (*attempts).into()],
            );
            record_failure(c, id, detail);
        }
    }
}

fn record_failure(c: &mut SpiClient<'_>, id: i64, detail: &Value) {
    db::update(
        c,
        "UPDATE workflow.message_bodies SET last_failure = $2 WHERE id = $1",
        &[id.into(), JsonB(detail.clone()).into()],
    );
}

/// Reads, asks and writes what a dead message does to its run or step (queue.md §9); true when
/// it failed something. Events go through the event machinery, acting for the message's app,
/// so every rule of events.md applies.
fn finalize(c: &mut SpiClient<'_>, m: &HeldRow, failure: &Failure) -> bool {
    tenancy::acting_for(m.app, || {
        let mut may_start_run = true;
        loop {
            let facts = finality(c, m, may_start_run);
            match plan::finalize(&facts, failure) {
                Finalization::NotNeeded => return false,
                Finalization::StartRun(event) => {
                    // Refused means it exists after all, or cannot: the next reading decides.
                    let _refused_or_created = on_behalf(m, event);
                    may_start_run = false;
                }
                Finalization::Fail(writes) => {
                    for write in writes {
                        match write {
                            FinalWrite::Event(event) => {
                                let _refused_or_written = on_behalf(m, event);
                            }
                            FinalWrite::Continue { queue_name, cbor } => {
                                let run_id = m.run_id.as_deref().unwrap_or_default();
                                q::enqueue_continuation(c, m.app, &queue_name, run_id, &m.held.version, cbor);
                            }
                        }
                    }
                    return true;
                }
            }
        }
    })
}

fn on_behalf(m: &HeldRow, event: Value) -> WfResult<Value> {
    events::create_on_behalf(m.run_id.as_deref().unwrap_or_default(), event)
}

fn finality(c: &SpiClient<'_>, m: &HeldRow, may_start_run: bool) -> Finality {
    let mut f = Finality { kind: m.held.kind, run_id: m.run_id.clone(), body: None, run: None, step: None, may_start_run };
    let Some(run_id) = m.run_id.as_deref().filter(|_| m.held.kind != QueueKind::Other) else {
        return f;
    };
    f.body = db::select(
        c,
        "SELECT health_check, step_id, namespace, encoding, body_json, body_cbor FROM workflow.message_bodies WHERE id = $1",
        &[m.id.into()],
    )
    .next()
    .map(|r| {
        let cbor_bytes = r.opt_bytes(6);
        DeadBody {
            health_check: r.flag(1),
            step_id: r.opt_text(2),
            namespace: r.opt_text(3),
            cbor: r.text(4) == "cbor",
            message: r.json(5).or_else(|| cbor_bytes.and_then(|b| cbor::to_json(&b).ok())).unwrap_or(Value::Null),
        }
    });
    f.run = facts::run_facts(c, m.app, run_id).ok().map(|run| RunSide {
        terminal: run.is_terminal(),
        spec_version: run.spec_version,
        workflow_name: run.workflow_name,
    });
    if let Some(step_id) = f.body.as_ref().and_then(|b| b.step_id.as_deref()) {
        f.step = db::select(
            c,
            "SELECT step_name, status IN ('completed', 'failed', 'cancelled') FROM workflow.steps \
             WHERE application_id = $1 AND run_id = $2 AND step_id = $3",
            &[m.app.into(), run_id.into(), step_id.into()],
        )
        .next()
        .map(|r| StepSide { name: r.text(1), terminal: r.flag(2) });
    }
    f
}
