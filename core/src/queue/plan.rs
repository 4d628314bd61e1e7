//! The queue's planner: what a held message becomes after something happened to it (queue.md
//! §5.3, §6.3, §8, §9), and what a dead message's finalization writes into its run or step.
//! The extension reads the message under lock, asks here, and applies the answer; no queue rule
//! lives in its SQL.

use super::{backoff_ms, delivery_error, failure_detail, too_early_delay_seconds, workflow_queue};
use super::{Failure, MessageState, Outcome, QueueKind, MAX_ATTEMPTS};
use crate::payload::Mode;
use serde_json::{json, Value};

/// The states a message waits in until `available_at`, before a claim leases it.
pub const WAITING: [MessageState; 3] = [MessageState::Pending, MessageState::Deferred, MessageState::Retrying];

/// [`WAITING`] as an SQL list, for statements written as literals (checked by a test).
#[macro_export]
macro_rules! waiting_states {
    () => {
        "'pending', 'deferred', 'retrying'"
    };
}

/// The states of work not yet done: waiting, or leased to a dispatcher (draining counts these).
pub const QUEUED: [MessageState; 4] =
    [MessageState::Pending, MessageState::Deferred, MessageState::Retrying, MessageState::Leased];

/// [`QUEUED`] as an SQL list (checked by a test).
#[macro_export]
macro_rules! queued_states {
    () => {
        "'pending', 'deferred', 'retrying', 'leased'"
    };
}

/// A message held under lock, as the rules need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub kind: QueueKind,
    pub queue_name: String,
    pub version: String,
    pub attempts: i32,
}

/// What happened to a held message.
#[derive(Debug, Clone, PartialEq)]
pub enum Happening {
    /// The dispatcher's outcome of a delivery.
    Reported(Outcome),
    /// Its lease ended before an outcome was recorded: a failed delivery (queue.md §5.3).
    LeaseExpired,
    /// Its version was expired: nothing may run it any more (lifecycle.md §2.4).
    VersionExpired,
    /// No handler served its version for `timeout_seconds` (queue.md §6.3).
    Unroutable { timeout_seconds: i32 },
    /// Its run was cancelled.
    RunCancelled,
}

/// The facts outside the message the rules read.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// The message's version is expired (checked only for re-schedules).
    pub version_expired: bool,
    pub now_ms: f64,
    pub now_iso: String,
}

/// The message's next stored state. Every variant ends the lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Delivered,
    /// Due again in `seconds`, attempts unchanged.
    DueIn {
        seconds: f64,
    },
    /// A failed delivery retried in `delay_ms`, with the failure recorded.
    Retry {
        attempts: i32,
        delay_ms: i64,
        detail: Value,
    },
    /// Dead. `finalize`: its death may fail its run or step (queue.md §9); otherwise it stays
    /// retryable from the dead letters.
    Dead {
        attempts: i32,
        detail: Value,
        failure: Failure,
        finalize: bool,
    },
}

impl Change {
    pub fn state(&self) -> MessageState {
        match self {
            Change::Delivered => MessageState::Delivered,
            Change::DueIn { seconds } if *seconds > 0.0 => MessageState::Deferred,
            Change::DueIn { .. } => MessageState::Pending,
            Change::Retry { .. } => MessageState::Retrying,
            Change::Dead { .. } => MessageState::Dead,
        }
    }

    /// Due right now: claimers should look again.
    pub fn due_now(&self) -> bool {
        matches!(self, Change::DueIn { seconds } if *seconds <= 0.0)
    }
}

pub fn lease_expired_failure() -> Failure {
    Failure::decided("LEASE_EXPIRED", "delivery lease expired before an outcome was recorded")
}

pub fn version_expired_failure() -> Failure {
    Failure::decided("VERSION_EXPIRED", "deployment version expired")
}

pub fn unroutable_failure(timeout_seconds: i32) -> Failure {
    Failure::decided("ROUTE_NOT_FOUND", format!("no handler registered for deployment version within {timeout_seconds} s"))
}

pub fn run_cancelled_failure() -> Failure {
    Failure::decided("RUN_CANCELLED", "run was cancelled")
}

/// What `what` makes of `m`.
pub fn plan(m: &Held, what: &Happening, ctx: &Context) -> Change {
    let dead = |attempts: i32, failure: Failure, finalize: bool| Change::Dead {
        attempts,
        detail: failure_detail(&failure, &ctx.now_iso, attempts, &m.queue_name, &m.version),
        failure,
        finalize,
    };
    let due_in = |seconds: f64| {
        // A version expired meanwhile discards the re-schedule.
        if ctx.version_expired {
            dead(m.attempts, version_expired_failure(), false)
        } else {
            Change::DueIn { seconds }
        }
    };
    let failed = |failure: Failure| {
        let attempts = m.attempts.saturating_add(1);
        if attempts >= MAX_ATTEMPTS {
            dead(attempts, failure, true)
        } else {
            let detail = failure_detail(&failure, &ctx.now_iso, attempts, &m.queue_name, &m.version);
            Change::Retry { attempts, delay_ms: backoff_ms(attempts), detail }
        }
    };
    match what {
        Happening::Reported(Outcome::Delivered) => Change::Delivered,
        Happening::Reported(Outcome::RescheduleAfter(seconds)) => due_in(*seconds),
        Happening::Reported(Outcome::TooEarly(at)) => due_in(too_early_delay_seconds(*at, ctx.now_ms)),
        Happening::Reported(Outcome::Failed(f)) => failed(f.clone()),
        Happening::LeaseExpired => failed(lease_expired_failure()),
        Happening::VersionExpired => dead(m.attempts, version_expired_failure(), false),
        Happening::RunCancelled => dead(m.attempts, run_cancelled_failure(), false),
        Happening::Unroutable { timeout_seconds } => dead(m.attempts, unroutable_failure(*timeout_seconds), true),
    }
}

/// What the adapter read for a finalizing dead message.
#[derive(Debug, Clone, PartialEq)]
pub struct Finality {
    pub kind: QueueKind,
    /// None: the message names no run.
    pub run_id: Option<String>,
    /// None: its body row is gone.
    pub body: Option<DeadBody>,
    /// None: the run does not exist.
    pub run: Option<RunSide>,
    /// The step the message names, when it names one and the step exists.
    pub step: Option<StepSide>,
    /// False once the adapter has created the run from the message's input.
    pub may_start_run: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeadBody {
    pub health_check: bool,
    pub step_id: Option<String>,
    pub namespace: Option<String>,
    pub cbor: bool,
    /// The message as JSON (CBOR bodies converted), Null when unreadable.
    pub message: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunSide {
    pub terminal: bool,
    pub spec_version: i32,
    pub workflow_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepSide {
    pub name: String,
    pub terminal: bool,
}

/// What finalizing a dead message does.
#[derive(Debug, Clone, PartialEq)]
pub enum Finalization {
    /// Nothing to fail (no run, a webhook, a health check, a run already finished): the message
    /// is not marked finalized, so an operator can still retry it.
    NotNeeded,
    /// The run never got created: create it as a resilient start would (this `run_started`
    /// body), read again, and ask again.
    StartRun(Value),
    /// Write these, in order, and mark the message finalized.
    Fail(Vec<FinalWrite>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum FinalWrite {
    /// An event on the run, written through the event rules; one they refuse (the run moved on
    /// concurrently) is simply not needed.
    Event(Value),
    /// A workflow message so the run replays and sees its step failed.
    Continue { queue_name: String, cbor: bool },
}

pub fn finalize(f: &Finality, failure: &Failure) -> Finalization {
    let (Some(_), Some(body)) = (&f.run_id, &f.body) else {
        return Finalization::NotNeeded;
    };
    if f.kind == QueueKind::Other || body.health_check {
        return Finalization::NotNeeded;
    }
    let Some(run) = &f.run else {
        return match body.message.get("runInput") {
            Some(input @ Value::Object(_)) if f.may_start_run && f.kind == QueueKind::Workflow => {
                Finalization::StartRun(json!({"eventType": "run_started", "eventData": input}))
            }
            _ => Finalization::NotNeeded,
        };
    };
    if run.terminal {
        return Finalization::NotNeeded;
    }
    let error = delivery_error(run.spec_version, "QueueDeliveryError", &failure.message, &failure.code).to_wire(Mode::Envelope);
    let Some(step_id) = &body.step_id else {
        return Finalization::Fail(vec![FinalWrite::Event(json!({
            "eventType": "run_failed", "eventData": {"error": error, "errorCode": "MAX_DELIVERIES_EXCEEDED"},
        }))]);
    };
    let mut writes = Vec::new();
    if let Some(step) = f.step.as_ref().filter(|s| !s.terminal) {
        writes.push(FinalWrite::Event(json!({
            "eventType": "step_failed", "correlationId": step_id, "eventData": {"error": error, "stepName": step.name},
        })));
    }
    writes.push(FinalWrite::Continue {
        queue_name: workflow_queue(body.namespace.as_deref(), &run.workflow_name),
        cbor: body.cbor,
    });
    Finalization::Fail(writes)
}

#[cfg(test)]
mod tests;
