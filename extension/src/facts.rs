//! Read-only facts many modules ask about a run or a deployment version. Kept below every
//! module that writes, so none of them has to import another writer to read.

use crate::db::{self, Row};
use pgrx::spi::SpiClient;
use pgworld_core::model::RunStatus;
use pgworld_core::queue::VersionStatus;
use pgworld_core::{Code, WfError, WfResult};
use serde_json::Value;

/// What the run actions (and a dead message's finalization) need to know about a run.
pub struct RunFacts {
    pub status: String,
    pub workflow_name: String,
    pub deployment_id: String,
    pub spec_version: i32,
    pub input: Option<Value>,
    pub execution_context: Option<Value>,
}

impl RunFacts {
    pub fn is_terminal(&self) -> bool {
        RunStatus::parse(&self.status).is_none_or(RunStatus::is_terminal)
    }
}

pub fn run_facts(c: &SpiClient<'_>, app: i32, run_id: &str) -> WfResult<RunFacts> {
    db::select(
        c,
        "SELECT status, workflow_name, deployment_id, spec_version, input, execution_context FROM workflow.runs \
         WHERE application_id = $1 AND run_id = $2",
        &[app.into(), run_id.into()],
    )
    .next()
    .map(|r| RunFacts {
        status: r.text(1),
        workflow_name: r.text(2),
        deployment_id: r.text(3),
        spec_version: r.int(4),
        input: r.json(5),
        execution_context: r.json(6),
    })
    .ok_or_else(|| WfError::new(Code::RunNotFound, format!("Run {run_id} not found")))
}

/// A version's lifecycle status; a version nobody declared is active.
pub fn version_status_of(c: &SpiClient<'_>, app: i32, version: &str) -> VersionStatus {
    db::select(
        c,
        "SELECT status FROM workflow.deployment_versions WHERE application_id = $1 AND deployment_id = $2",
        &[app.into(), version.into()],
    )
    .next()
    .and_then(|r| VersionStatus::parse(&r.text(1)))
    .unwrap_or(VersionStatus::Active)
}

pub fn version_expired(c: &SpiClient<'_>, app: i32, version: &str) -> bool {
    version_status_of(c, app, version) == VersionStatus::Expired
}

pub fn expired_error(version: &str) -> WfError {
    WfError::new(Code::VersionExpired, format!("Deployment version {version} is expired"))
}

/// Where work that names no deployment version goes (a start from SQL, a health check from the
/// WDK's CLI or web UI): among the app's versions with registered pods that are neither draining
/// nor expired, the one whose pods first registered most recently.
pub fn newest_served(c: &SpiClient<'_>, app: i32) -> Option<String> {
    db::select(
        c,
        "SELECT h.deployment_version FROM workflow.handlers h \
         LEFT JOIN workflow.deployment_versions v ON v.application_id = h.application_id AND v.deployment_id = h.deployment_version \
         WHERE h.application_id = $1 AND coalesce(v.status, 'active') = 'active' \
         GROUP BY h.deployment_version ORDER BY min(h.registered_at) DESC, h.deployment_version DESC LIMIT 1",
        &[app.into()],
    )
    .next()
    .map(|r| r.text(1))
}
