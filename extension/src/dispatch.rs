//! The dispatcher's side of the queue (spec/queue.md §5, §8): outcomes of leased messages and
//! lease renewal (claims: claim.rs; what an outcome does: messages.rs). These act across apps
//! (dispatchers serve every app) and are granted to pgworld_service only.

use crate::db;
use crate::messages::{self, held_from, HELD_COLS};
use crate::{reply, tenancy};
use pgrx::datum::JsonB;
use pgrx::prelude::*;
use pgrx::Uuid;
use pgworld_core::queue::plan::Happening;
use pgworld_core::queue::Outcome;
use serde_json::json;

/// `workflow.dispatch_complete(lease_id, outcome)`: false when the lease is no longer held.
#[pg_extern(volatile, parallel_unsafe, name = "_dispatch_complete")]
fn dispatch_complete(lease_id: Uuid, outcome: &str) -> JsonB {
    reply::respond(reply::arg("outcome", outcome).and_then(|o| Outcome::from_json(&o)).map(|outcome| {
        tenancy::with_cross_app(|| {
            Spi::connect_mut(|c| {
                let sql = format!(
                    "SELECT {HELD_COLS} FROM workflow.messages m WHERE m.lease_id = $1 AND m.state = 'leased' FOR UPDATE"
                );
                let held = db::update(c, &sql, &[lease_id.into()]).next().map(|r| held_from(&r));
                if let Some(m) = &held {
                    messages::settle(c, m, &Happening::Reported(outcome));
                }
                json!(held.is_some())
            })
        })
    }))
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
/// of a busy dispatcher; the same change the planner makes of a delivery. Leases no longer held
/// are skipped, as in `dispatch_complete`.
#[pg_extern(volatile, parallel_unsafe, name = "_dispatch_delivered")]
fn dispatch_delivered(lease_ids: Array<'_, Uuid>) -> i64 {
    let lease_ids = held(&lease_ids);
    // Every lease named ends here or had ended already; either way its slot is free at commit.
    for lease in &lease_ids {
        crate::pods::lease_ended(lease);
    }
    tenancy::with_cross_app(|| Spi::connect_mut(|c| db::update(c, messages::DELIVER_LEASES, &[lease_ids.into()]).len() as i64))
}
