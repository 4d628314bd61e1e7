//! Per-app quotas (spec/lifecycle.md §5), checked inside the writing transaction.

use crate::db::{self, Row};
use pgrx::spi::SpiClient;
use pgworld_core::{Code, WfError, WfResult};

pub const DEFAULT_MAX_RUNS: i64 = 10_000;
pub const DEFAULT_MAX_EVENTS_PER_RUN: i64 = 25_000;

/// Termination decrements spread over these shards so they never queue behind run creation.
const RELEASE_SHARDS: i32 = 8;

/// Counts a new active run, exactly: creators serialize on shard 0 (held to commit), and read
/// the committed releases of the other shards. An uncommitted release only makes this stricter.
pub fn admit_run(c: &mut SpiClient<'_>, app: i32) -> WfResult<()> {
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
        return Err(WfError::new(Code::RunQuota, "Run quota exceeded"));
    }
    Ok(())
}

/// The counter shard this backend releases runs on.
pub fn release_shard() -> i32 {
    1 + i32::try_from(std::process::id()).unwrap_or_default().rem_euclid(RELEASE_SHARDS)
}
