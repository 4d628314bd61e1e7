//! Retention: delivered and dead messages, and finished runs with their events, steps, hooks,
//! waits, streams and messages, are deleted once older than their retention. Maintenance deletes
//! a bounded batch per call, skipping rows other sessions hold.

use crate::db::{self, Row};
use crate::{guc, tenancy};
use pgrx::spi::SpiClient;
use pgrx::Spi;
use pgworld_core::error::{WfError, WfResult};
use pgworld_core::queued_states;
use serde_json::{json, Value};

/// Runs deleted per maintenance call. Each run takes its whole log with it, so this bounds the
/// transaction by runs, not rows.
const RUN_BATCH: i64 = 100;
const MAX_RETENTION_DAYS: i64 = 36_500;

/// `workflow.retention_get()` (admin): the current app's run retention.
pub fn retention_get() -> WfResult<Value> {
    tenancy::require_admin()?;
    let app = tenancy::current_app()?;
    Spi::connect(|c| {
        let set = db::select(c, "SELECT run_retention_seconds FROM workflow.quotas WHERE application_id = $1", &[app.into()])
            .next()
            .and_then(|r| r.opt_int(1));
        let seconds = set.unwrap_or_else(|| guc::RUN_RETENTION.get());
        Ok(json!({"runRetentionDays": f64::from(seconds) / 86_400.0, "isDefault": set.is_none()}))
    })
}

/// `workflow.retention_put(body)` (admin): `{"runRetentionDays": n}` sets it, `null` restores the
/// default (`workflow.run_retention`).
pub fn retention_put(body: &Value) -> WfResult<Value> {
    tenancy::require_admin()?;
    let app = tenancy::current_app()?;
    let days = match body.get("runRetentionDays") {
        None => return Err(WfError::bad_request("runRetentionDays is required")),
        Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().filter(|d| (1..=MAX_RETENTION_DAYS).contains(d)).ok_or_else(|| {
            WfError::bad_request(format!("runRetentionDays must be an integer from 1 to {MAX_RETENTION_DAYS}, or null"))
        })?),
    };
    let seconds = days.map(|d| i32::try_from(d * 86_400).unwrap_or(i32::MAX));
    Spi::connect_mut(|c| {
        db::update(
            c,
            "INSERT INTO workflow.quotas AS q (application_id, run_retention_seconds) VALUES ($1, $2) \
             ON CONFLICT (application_id) DO UPDATE SET run_retention_seconds = EXCLUDED.run_retention_seconds, updated_at = now()",
            &[app.into(), seconds.into()],
        );
    });
    retention_get()
}

/// One maintenance batch: deletes finished runs past retention and everything they own. A run
/// with live queue messages is left for a later pass, so retention never races delivery.
pub fn run_retention(c: &mut SpiClient<'_>) -> usize {
    // A newer library over a 0.1.0 schema (between the package upgrade and ALTER EXTENSION
    // UPDATE) has no retention settings yet: do nothing rather than fail maintenance.
    let ready = db::select(
        c,
        "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = 'workflow.quotas'::regclass \
           AND attname = 'run_retention_seconds' AND NOT attisdropped",
        &[],
    )
    .next()
    .is_some();
    if !ready {
        return 0;
    }
    let doomed: Vec<(i32, String)> = db::update(
        c,
        concat!(
            "SELECT r.application_id, r.run_id FROM workflow.runs r LEFT JOIN workflow.quotas q USING (application_id) \
         WHERE r.status IN ('completed', 'failed', 'cancelled', 'expired') \
           AND r.updated_at < now() - make_interval(secs => coalesce(q.run_retention_seconds, $2)) \
           AND NOT EXISTS (SELECT 1 FROM workflow.messages m WHERE m.application_id = r.application_id \
                             AND m.run_id = r.run_id AND m.state IN (",
            queued_states!(),
            ")) \
         ORDER BY r.updated_at LIMIT $1 FOR UPDATE OF r SKIP LOCKED"
        ),
        &[RUN_BATCH.into(), f64::from(guc::RUN_RETENTION.get()).into()],
    )
    .map(|r| (r.int(1), r.text(2)))
    .collect();
    if doomed.is_empty() {
        return 0;
    }
    let (apps, runs): (Vec<i32>, Vec<String>) = doomed.into_iter().unzip();
    let n = runs.len();
    let doomed = "unnest($1::int4[], $2::text[]) AS d(app, run)";
    let args = [apps.into(), runs.into()];
    for sql in [
        format!(
            "DELETE FROM workflow.stream_chunks k USING workflow.streams s, {doomed} \
             WHERE s.application_id = d.app AND s.run_id = d.run AND k.application_id = s.application_id AND k.name = s.name"
        ),
        format!(
            "DELETE FROM workflow.message_bodies b USING workflow.messages m, {doomed} \
             WHERE m.application_id = d.app AND m.run_id = d.run AND b.id = m.id"
        ),
        format!("DELETE FROM workflow.messages x USING {doomed} WHERE x.application_id = d.app AND x.run_id = d.run"),
        format!("DELETE FROM workflow.streams x USING {doomed} WHERE x.application_id = d.app AND x.run_id = d.run"),
        format!("DELETE FROM workflow.events x USING {doomed} WHERE x.application_id = d.app AND x.run_id = d.run"),
        format!("DELETE FROM workflow.steps x USING {doomed} WHERE x.application_id = d.app AND x.run_id = d.run"),
        format!("DELETE FROM workflow.hooks x USING {doomed} WHERE x.application_id = d.app AND x.run_id = d.run"),
        format!("DELETE FROM workflow.waits x USING {doomed} WHERE x.application_id = d.app AND x.run_id = d.run"),
        format!("DELETE FROM workflow.runs x USING {doomed} WHERE x.application_id = d.app AND x.run_id = d.run"),
    ] {
        db::update(c, &sql, &args);
    }
    n
}

/// Deletes finished messages past their retention, oldest first, a batch per call.
pub fn message_retention(c: &mut SpiClient<'_>, batch: i64) -> usize {
    let delivered = f64::from(guc::DELIVERED_RETENTION.get());
    let dead = f64::from(guc::DEAD_RETENTION.get());
    let ids: Vec<i64> = db::update(
        c,
        "SELECT id FROM workflow.messages WHERE state IN ('delivered', 'dead') \
           AND updated_at < now() - make_interval(secs => least($2, $3)) \
           AND ((state = 'delivered' AND delivered_at < now() - make_interval(secs => $2)) \
             OR (state = 'dead' AND dead_at < now() - make_interval(secs => $3))) \
         ORDER BY updated_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        &[batch.into(), delivered.into(), dead.into()],
    )
    .map(|r| r.bigint(1))
    .collect();
    if !ids.is_empty() {
        db::update(c, "DELETE FROM workflow.message_bodies WHERE id = ANY($1)", &[ids.clone().into()]);
        db::update(c, "DELETE FROM workflow.messages WHERE id = ANY($1)", &[ids.clone().into()]);
    }
    ids.len()
}
