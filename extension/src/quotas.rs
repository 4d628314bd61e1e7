//! Per-app quotas (spec/lifecycle.md §5), checked inside the writing transaction.

use crate::db::{self, Row};
use pgrx::spi::SpiClient;
use pgworld_core::{Code, WfError, WfResult};

pub const DEFAULT_MAX_RUNS: i64 = 10_000;
pub const DEFAULT_MAX_EVENTS_PER_RUN: i64 = 25_000;

/// Termination decrements spread over these shards so they never queue behind run creation.
const RELEASE_SHARDS: i32 = 8;

#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    pub max_runs: i64,
    pub max_events_per_run: i64,
}

pub fn effective(c: &SpiClient<'_>, app: i32) -> Quotas {
    let row = db::select(
        c,
        "SELECT max_runs::bigint, max_events_per_run::bigint FROM workflow.quotas WHERE application_id = $1",
        &[app.into()],
    )
    .next()
    .map(|r| (r.get::<i64>(1).ok().flatten(), r.get::<i64>(2).ok().flatten()));
    let (runs, events) = row.unwrap_or((None, None));
    Quotas { max_runs: runs.unwrap_or(DEFAULT_MAX_RUNS), max_events_per_run: events.unwrap_or(DEFAULT_MAX_EVENTS_PER_RUN) }
}

/// Counts a new active run, exactly: creators serialize on shard 0 (held to commit), and read
/// the committed releases of the other shards. An uncommitted release only makes this stricter.
pub fn admit_run(c: &mut SpiClient<'_>, app: i32) -> WfResult<()> {
    let active = db::update(
        c,
        "UPDATE workflow.run_counters SET active = active + 1 WHERE application_id = $1 AND shard = 0 \
         RETURNING active + (SELECT coalesce(sum(active), 0) FROM workflow.run_counters WHERE application_id = $1 AND shard > 0)::bigint",
        &[app.into()],
    )
    .next()
    .map(|r| r.bigint(1))
    .unwrap_or_default();
    if active > effective(c, app).max_runs {
        return Err(WfError::new(Code::RunQuota, "Run quota exceeded"));
    }
    Ok(())
}

pub fn release_run(c: &mut SpiClient<'_>, app: i32) {
    let shard = 1 + i32::try_from(std::process::id()).unwrap_or_default().rem_euclid(RELEASE_SHARDS);
    db::update(
        c,
        "UPDATE workflow.run_counters SET active = active - 1 WHERE application_id = $1 AND shard = $2::smallint",
        &[app.into(), shard.into()],
    );
}
