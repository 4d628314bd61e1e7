//! The rows an event writes. The two contended inserts (a run, a hook's token) run on their own
//! and first, so that losing one leaves nothing to undo; every other write of an event is a
//! part of one statement with its first event's insert (`db::Writes`): one executor start per
//! event instead of one per row.

use crate::db::{self, json_datum, opt_ts_datum, ts_datum, Writes};
use pgrx::datum::{DatumWithOid, JsonB};
use pgrx::spi::SpiClient;
use pgworld_core::model::*;
use serde_json::Value;

pub fn insert_run(c: &mut SpiClient<'_>, app: i32, r: &Run, event_count: i64) -> bool {
    db::update_any(
        c,
        "INSERT INTO workflow.runs (application_id, run_id, status, deployment_id, workflow_name, spec_version, event_count, \
         execution_context, input, attributes, encryption_public_key, created_at, updated_at, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (application_id, run_id) DO NOTHING RETURNING 1",
        &[
            app.into(),
            r.run_id.as_str().into(),
            r.status.as_str().into(),
            r.deployment_id.as_str().into(),
            r.workflow_name.as_str().into(),
            r.spec_version.into(),
            event_count.into(),
            json_datum(&r.execution_context).into(),
            json_datum(&r.input).into(),
            JsonB(Value::Object(r.attributes.clone())).into(),
            r.encryption_public_key.clone().into(),
            ts_datum(r.created_at).into(),
            ts_datum(r.updated_at).into(),
            opt_ts_datum(r.started_at).into(),
        ],
    )
}

/// Claims the token through the live-token unique index; false when another live hook holds it.
pub fn insert_hook(c: &mut SpiClient<'_>, app: i32, h: &Hook) -> bool {
    db::update_any(
        c,
        "INSERT INTO workflow.hooks (application_id, run_id, hook_id, token, status, owner_id, project_id, environment, metadata, \
         is_webhook, is_system, spec_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (application_id, token) WHERE status <> 'disposed' DO NOTHING RETURNING hook_seq",
        &[
            app.into(),
            h.run_id.as_str().into(),
            h.hook_id.as_str().into(),
            h.token.as_str().into(),
            h.status.as_str().into(),
            h.owner_id.as_str().into(),
            h.project_id.as_str().into(),
            h.environment.as_str().into(),
            json_datum(&h.metadata).into(),
            h.is_webhook.into(),
            h.is_system.into(),
            h.spec_version.into(),
            ts_datum(h.created_at).into(),
        ],
    )
}

pub const INSERT_EVENT: &str =
    "INSERT INTO workflow.events (application_id, run_id, slot, event_type, correlation_id, event_data, \
     spec_version, created_at, resume_id, resume_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq";

pub fn event_args<'a>(app: i32, e: &'a Event) -> Vec<DatumWithOid<'a>> {
    vec![
        app.into(),
        e.run_id.as_str().into(),
        e.slot.into(),
        e.event_type.as_str().into(),
        e.correlation_id.as_deref().into(),
        e.event_data.clone().map(|m| JsonB(Value::Object(m))).into(),
        e.spec_version.into(),
        ts_datum(e.created_at).into(),
        e.resume_id.as_deref().into(),
        e.resume_digest.as_deref().into(),
    ]
}

/// Only the event count moves.
pub fn bump_run(w: &mut Writes<'_>, app: i32, run_id: &str, event_count: i64) {
    w.add(
        "UPDATE workflow.runs SET event_count = $3 WHERE application_id = $1 AND run_id = $2",
        vec![app.into(), run_id.to_owned().into(), event_count.into()],
    );
}

pub fn update_run(w: &mut Writes<'_>, app: i32, r: &Run, event_count: i64) {
    w.add(
        "UPDATE workflow.runs SET status = $3, output = $4, error = $5, error_code = $6, attributes = $7, updated_at = $8, \
         started_at = $9, completed_at = $10, expired_at = $11, event_count = $12 WHERE application_id = $1 AND run_id = $2",
        vec![
            app.into(),
            r.run_id.clone().into(),
            r.status.as_str().into(),
            json_datum(&r.output).into(),
            json_datum(&r.error).into(),
            r.error_code.clone().into(),
            JsonB(Value::Object(r.attributes.clone())).into(),
            ts_datum(r.updated_at).into(),
            opt_ts_datum(r.started_at).into(),
            opt_ts_datum(r.completed_at).into(),
            opt_ts_datum(r.expired_at).into(),
            event_count.into(),
        ],
    );
}

pub fn insert_step(w: &mut Writes<'_>, app: i32, s: &Step) {
    w.add(
        "INSERT INTO workflow.steps (application_id, run_id, step_id, step_name, status, attempt, spec_version, input, \
         created_slot, created_at, updated_at, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        vec![
            app.into(),
            s.run_id.clone().into(),
            s.step_id.clone().into(),
            s.step_name.clone().into(),
            s.status.as_str().into(),
            s.attempt.into(),
            s.spec_version.into(),
            json_datum(&s.input).into(),
            s.created_slot.into(),
            ts_datum(s.created_at).into(),
            ts_datum(s.updated_at).into(),
            opt_ts_datum(s.started_at).into(),
        ],
    );
}

pub fn update_step(w: &mut Writes<'_>, app: i32, s: &Step) {
    w.add(
        "UPDATE workflow.steps SET status = $4, attempt = $5, output = $6, error = $7, retry_after = $8, updated_at = $9, \
         started_at = $10, completed_at = $11 WHERE application_id = $1 AND run_id = $2 AND step_id = $3",
        vec![
            app.into(),
            s.run_id.clone().into(),
            s.step_id.clone().into(),
            s.status.as_str().into(),
            s.attempt.into(),
            json_datum(&s.output).into(),
            json_datum(&s.error).into(),
            opt_ts_datum(s.retry_after).into(),
            ts_datum(s.updated_at).into(),
            opt_ts_datum(s.started_at).into(),
            opt_ts_datum(s.completed_at).into(),
        ],
    );
}

pub fn update_hook(w: &mut Writes<'_>, app: i32, h: &Hook) {
    w.add(
        "UPDATE workflow.hooks SET status = $4, received_at = $5, disposed_at = $6 WHERE application_id = $1 AND run_id = $2 AND hook_id = $3",
        vec![
            app.into(),
            h.run_id.clone().into(),
            h.hook_id.clone().into(),
            h.status.as_str().into(),
            opt_ts_datum(h.received_at).into(),
            opt_ts_datum(h.disposed_at).into(),
        ],
    );
}

pub fn insert_wait(w: &mut Writes<'_>, app: i32, wt: &Wait) {
    w.add(
        "INSERT INTO workflow.waits (application_id, run_id, wait_id, status, resume_at, spec_version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            app.into(),
            wt.run_id.clone().into(),
            wt.wait_id.clone().into(),
            wt.status.as_str().into(),
            opt_ts_datum(wt.resume_at).into(),
            wt.spec_version.into(),
            ts_datum(wt.created_at).into(),
            ts_datum(wt.updated_at).into(),
        ],
    );
}

pub fn update_wait(w: &mut Writes<'_>, app: i32, wt: &Wait) {
    w.add(
        "UPDATE workflow.waits SET status = $4, completed_at = $5, updated_at = $6 WHERE application_id = $1 AND run_id = $2 AND wait_id = $3",
        vec![
            app.into(),
            wt.run_id.clone().into(),
            wt.wait_id.clone().into(),
            wt.status.as_str().into(),
            opt_ts_datum(wt.completed_at).into(),
            ts_datum(wt.updated_at).into(),
        ],
    );
}

/// Run termination effects (events.md §7): hooks disposed (tokens freed), waits completed. No
/// events are written for these. The event that terminates writes no child row, so these
/// touch rows no other part does.
pub fn terminate(w: &mut Writes<'_>, app: i32, run_id: &str, now: i64) {
    w.add(
        "UPDATE workflow.hooks SET status = 'disposed', disposed_at = $3 WHERE application_id = $1 AND run_id = $2 AND status <> 'disposed'",
        vec![app.into(), run_id.to_owned().into(), ts_datum(now).into()],
    );
    w.add(
        "UPDATE workflow.waits SET status = 'completed', completed_at = $3, updated_at = $3 \
         WHERE application_id = $1 AND run_id = $2 AND status = 'waiting'",
        vec![app.into(), run_id.to_owned().into(), ts_datum(now).into()],
    );
}

/// The app's active-run counter row `shard` moves by `delta` (an admission, a termination).
pub fn count_runs(w: &mut Writes<'_>, app: i32, shard: i32, delta: i64) {
    w.add(
        "UPDATE workflow.run_counters SET active = active + $3 WHERE application_id = $1 AND shard = $2::smallint",
        vec![app.into(), shard.into(), delta.into()],
    );
}
