//! Per-app quotas (spec/lifecycle.md §5), checked inside the writing transaction.

use crate::active_runs;
use crate::db::{self, Row};
use pgrx::spi::SpiClient;
use pgworld_core::{Code, WfError, WfResult};

pub const DEFAULT_MAX_RUNS: i64 = 10_000;
pub const DEFAULT_MAX_EVENTS_PER_RUN: i64 = 25_000;

/// Terminations (and, with the shared count, admissions) spread over these shards so they do
/// not queue behind each other.
const SHARDS: i32 = 8;

fn quota_exceeded() -> WfError {
    WfError::new(Code::RunQuota, "Run quota exceeded")
}

/// How a new active run is counted.
pub enum Admission {
    /// The shared count admitted it; the caller adds it to the app's counter row `shard`.
    Counted { shard: i32 },
    /// No shared count for the app: the caller runs `admit_run_serialized` after its writes.
    Serialized,
}

/// Counts a new active run, exactly. With the shared count (the library preloaded), the
/// admission counts at once, committed or not, and only the backend's own counter row is
/// written, so creators do not wait for each other.
pub fn admit_run(c: &SpiClient<'_>, app: i32, max_runs: Option<i64>) -> WfResult<Admission> {
    let Some(place) = active_runs::place(c, app) else {
        return Ok(Admission::Serialized);
    };
    if !active_runs::admit(place, max_runs.unwrap_or(DEFAULT_MAX_RUNS)) {
        return Err(quota_exceeded());
    }
    Ok(Admission::Counted { shard: own_shard() })
}

/// Without the shared count: creators serialize on shard 0 (held to commit) and read the
/// committed releases of the other shards; an uncommitted release only makes this stricter.
pub fn admit_run_serialized(c: &mut SpiClient<'_>, app: i32) -> WfResult<()> {
    let (active, max_runs) = db::update(
        c,
        "UPDATE workflow.run_counters SET active = active + 1 WHERE application_id = $1 AND shard = 0 \
         RETURNING active + (SELECT coalesce(sum(active), 0) FROM workflow.run_counters WHERE application_id = $1 AND shard > 0)::bigint, \
                   (SELECT q.max_runs FROM workflow.quotas q WHERE q.application_id = $1)::bigint",
        &[app.into()],
    )
    .next()
    .map(|r| (r.bigint(1), r.opt_bigint(2)))
    .unwrap_or_default();
    if active > max_runs.unwrap_or(DEFAULT_MAX_RUNS) {
        return Err(quota_exceeded());
    }
    Ok(())
}

/// A run of the app ends in this transaction: its place is freed when it commits. Returns the
/// counter shard to take it off.
pub fn end_run(c: &SpiClient<'_>, app: i32) -> i32 {
    if let Some(place) = active_runs::place(c, app) {
        active_runs::ended(place);
    }
    own_shard()
}

/// The counter shard (1 to 8) this backend writes, other than serialized admissions' shard 0.
fn own_shard() -> i32 {
    1 + i32::try_from(std::process::id()).unwrap_or_default().rem_euclid(SHARDS)
}
