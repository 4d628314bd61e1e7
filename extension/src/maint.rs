//! Periodic maintenance (spec/lifecycle.md §6, §3), called by every dispatcher replica. Each task
//! is bounded per call and skips rows another replica holds, so replicas share the work.

use crate::db::{self, Row};
use crate::messages;
use crate::{events, guc, retention, tenancy};
use pgrx::spi::SpiClient;
use pgrx::Spi;
use pgworld_core::payload::Mode;
use pgworld_core::queue;
use pgworld_core::queue::plan::Happening;
use pgworld_core::{queued_states, waiting_states};
use serde_json::{json, Value};

/// Rows each task handles per call.
const BATCH: i64 = 1000;

pub fn pass() -> Value {
    tenancy::with_cross_app(|| {
        Spi::connect_mut(|c| {
            let (expired_leases, _) = crate::claim::expire_from(c, i64::MIN, BATCH);
            let (marked, cleared, unroutable_dead) = unroutable(c);
            let version_dead = kill_expired_versions(c);
            let reaped = reap_orphans(c, 100);
            let deleted = retention::message_retention(c, BATCH);
            let deleted_runs = retention::run_retention(c);
            let windows = db::update(
                c,
                "DELETE FROM workflow.queue_rate WHERE window_start < date_trunc('minute', now()) - interval '2 minutes' RETURNING 1",
                &[],
            )
            .len();
            json!({
                "expiredLeases": expired_leases,
                "unroutableMarked": marked,
                "unroutableCleared": cleared,
                "unroutableDead": unroutable_dead,
                "expiredVersionDead": version_dead,
                "orphanedRuns": reaped,
                "deletedMessages": deleted,
                "deletedRuns": deleted_runs,
                "deletedRateWindows": windows,
            })
        })
    })
}

/// Sets aside due messages no handler serves, brings back those that gained one, and kills those
/// unroutable for longer than `workflow.unroutable_timeout` (queue.md §6.3).
fn unroutable(c: &mut SpiClient<'_>) -> (usize, usize, usize) {
    let marked = db::update(
        c,
        concat!(
            "WITH u AS (SELECT m.id FROM workflow.messages m \
           WHERE m.state IN (",
            waiting_states!(),
            ") AND m.unroutable_since IS NULL AND m.available_at <= now() \
             AND NOT EXISTS (SELECT 1 FROM workflow.handlers h \
                             WHERE h.application_id = m.application_id AND h.deployment_version = m.deployment_version) \
           LIMIT $1 FOR UPDATE OF m SKIP LOCKED) \
         UPDATE workflow.messages m SET unroutable_since = now() FROM u WHERE m.id = u.id RETURNING 1"
        ),
        &[BATCH.into()],
    )
    .len();
    // Registration clears its version's marks itself; this catches a mark set by a pass that
    // raced with a registration, so a served message is never timed out.
    let cleared = db::update(
        c,
        concat!(
            "WITH r AS (SELECT m.id FROM workflow.messages m \
           WHERE m.state IN (",
            waiting_states!(),
            ") AND m.unroutable_since IS NOT NULL \
             AND EXISTS (SELECT 1 FROM workflow.handlers h \
                         WHERE h.application_id = m.application_id AND h.deployment_version = m.deployment_version) \
           LIMIT $1 FOR UPDATE OF m SKIP LOCKED) \
         UPDATE workflow.messages m SET unroutable_since = NULL FROM r WHERE m.id = r.id RETURNING 1"
        ),
        &[BATCH.into()],
    )
    .len();
    let timeout = guc::UNROUTABLE_TIMEOUT.get();
    let stale = messages::settle_all(
        c,
        concat!(
            "workflow.messages m WHERE m.state IN (",
            waiting_states!(),
            ") AND m.unroutable_since IS NOT NULL \
             AND m.unroutable_since < now() - make_interval(secs => $2) LIMIT $1 FOR UPDATE SKIP LOCKED"
        ),
        &[BATCH.into(), f64::from(timeout).into()],
        &Happening::Unroutable { timeout_seconds: timeout },
    );
    (marked, cleared, stale)
}

fn kill_expired_versions(c: &mut SpiClient<'_>) -> usize {
    messages::settle_all(
        c,
        concat!(
            "workflow.messages m JOIN workflow.deployment_versions v \
               ON v.application_id = m.application_id AND v.deployment_id = m.deployment_version \
             WHERE v.status = 'expired' AND m.state IN (",
            waiting_states!(),
            ") LIMIT $1 FOR UPDATE OF m SKIP LOCKED"
        ),
        &[BATCH.into()],
        &Happening::VersionExpired,
    )
}

/// Fails running runs that nothing can move forward any more (lifecycle.md §3).
pub fn reap_orphans(c: &mut SpiClient<'_>, limit: i64) -> usize {
    let timeout = guc::ORPHAN_TIMEOUT.get();
    if timeout <= 0 {
        return 0;
    }
    let orphans: Vec<(i32, String, i32)> = db::update(
        c,
        concat!(
            "SELECT r.application_id, r.run_id, r.spec_version FROM workflow.runs r \
         WHERE r.status = 'running' AND r.updated_at < now() - make_interval(secs => $2) \
           AND NOT EXISTS (SELECT 1 FROM workflow.messages m WHERE m.application_id = r.application_id AND m.run_id = r.run_id \
                           AND (m.state IN (",
            queued_states!(),
            ") \
                                OR m.updated_at >= now() - make_interval(secs => $2))) \
           AND NOT EXISTS (SELECT 1 FROM workflow.waits w WHERE w.application_id = r.application_id AND w.run_id = r.run_id \
                           AND w.status = 'waiting') \
           AND NOT EXISTS (SELECT 1 FROM workflow.hooks h WHERE h.application_id = r.application_id AND h.run_id = r.run_id \
                           AND h.status <> 'disposed') \
           AND NOT EXISTS (SELECT 1 FROM workflow.events e WHERE e.application_id = r.application_id AND e.run_id = r.run_id \
                           AND e.slot = r.event_count AND e.created_at >= now() - make_interval(secs => $2)) \
         LIMIT $1 FOR UPDATE OF r SKIP LOCKED"
        ),
        &[limit.into(), f64::from(timeout).into()],
    )
    .map(|r| (r.int(1), r.text(2), r.int(3)))
    .collect();
    let mut reaped = 0;
    for (app, run_id, spec_version) in &orphans {
        let message = format!("Run made no progress for {} and has no pending work", human_duration(timeout));
        let error = queue::delivery_error(*spec_version, "OrphanedRunError", &message, "ORPHANED").to_wire(Mode::Envelope);
        let failed = tenancy::acting_for(*app, || {
            events::create_on_behalf(
                run_id,
                json!({"eventType": "run_failed", "eventData": {"error": error, "errorCode": "ORPHANED"}}),
            )
        });
        reaped += usize::from(failed.is_ok());
    }
    reaped
}

fn human_duration(seconds: i32) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}min", s / 60),
        s => format!("{s}s"),
    }
}

/// `workflow.metrics()` (service only): live queue depth by app and state, and active runs by
/// app and version, read through partial indexes of live rows.
pub fn snapshot() -> Value {
    tenancy::with_cross_app(|| {
        Spi::connect(|c| {
            let queue: Vec<Value> = db::select(
                c,
                concat!("SELECT a.label, m.state, count(*) FROM workflow.messages m JOIN workflow.applications a USING (application_id) \
                 WHERE m.state IN (", queued_states!(), ", 'dead') GROUP BY a.label, m.state ORDER BY 1, 2"),
                &[],
            )
            .map(|r| json!({"app": r.text(1), "state": r.text(2), "count": r.bigint(3)}))
            .collect();
            let runs: Vec<Value> = db::select(
                c,
                "SELECT a.label, r.deployment_id, count(*) FROM workflow.runs r JOIN workflow.applications a USING (application_id) \
                 WHERE r.status IN ('pending', 'running') GROUP BY a.label, r.deployment_id ORDER BY 1, 2",
                &[],
            )
            .map(|r| json!({"app": r.text(1), "version": r.text(2), "count": r.bigint(3)}))
            .collect();
            json!({"queue": queue, "activeRuns": runs})
        })
    })
}

#[pgrx::pg_extern(volatile, parallel_unsafe, name = "_maint_run")]
fn maint_run() -> pgrx::JsonB {
    pgrx::JsonB(pass())
}

#[pgrx::pg_extern(stable, parallel_safe, name = "_metrics")]
fn metrics() -> pgrx::JsonB {
    pgrx::JsonB(snapshot())
}

/// `workflow.maint_reap_orphans(limit)`: one bounded orphan pass (tests and operators).
#[pgrx::pg_extern(volatile, parallel_unsafe, name = "_maint_reap_orphans")]
fn maint_reap_orphans(limit: i32) -> i64 {
    let limit = i64::from(limit.clamp(1, 10_000));
    tenancy::with_cross_app(|| Spi::connect_mut(|c| reap_orphans(c, limit) as i64))
}
