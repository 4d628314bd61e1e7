//! Handlers, deployment versions and quotas (spec/queue.md §6, lifecycle.md §2 and §5).

use crate::db::{self, OrInternal, Row};
use crate::facts::{self, version_status_of};
use crate::queue as q;
use crate::{events, messages, quotas, tenancy};
use pgrx::spi::SpiClient;
use pgrx::Spi;
use pgworld_core::queue::plan::Happening;
use pgworld_core::queue::{self, VersionStatus};
use pgworld_core::waiting_states;
use pgworld_core::{Code, WfError, WfResult};
use serde_json::{json, Map, Value};

const HANDLER_REQUIRED: &str = "podId (or machineId), deploymentVersion, and endpoints are required";

fn text_field(body: &Map<String, Value>, k: &str) -> WfResult<Option<String>> {
    match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::String(_)) => Ok(None),
        Some(_) => Err(WfError::bad_request(format!("{k} must be a string"))),
    }
}

/// `workflow.handler_register(body)`.
pub fn handler_register(body: &Value) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    let b = body.as_object().ok_or_else(|| WfError::bad_request("request body must be a JSON object"))?;
    let pod = text_field(b, "podId")?.or(text_field(b, "machineId")?).ok_or_else(|| WfError::bad_request(HANDLER_REQUIRED))?;
    if pod.chars().count() > 256 {
        return Err(WfError::bad_request("podId must be at most 256 characters"));
    }
    let version = match b.get("deploymentVersion") {
        Some(Value::String(s)) if s.len() <= queue::MAX_DEPLOYMENT_ID_BYTES => s.clone(),
        Some(Value::String(_)) => return Err(WfError::bad_request("deploymentVersion is too long")),
        _ => return Err(WfError::bad_request(HANDLER_REQUIRED)),
    };
    let service_scoped = match b.get("serviceScoped") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(v)) => *v,
        Some(_) => return Err(WfError::bad_request("serviceScoped must be a boolean")),
    };
    let endpoints = b.get("endpoints").and_then(Value::as_object).ok_or_else(|| WfError::bad_request(HANDLER_REQUIRED))?;
    let (spec_version, core_version) = sdk_of(b.get("sdk"))?;
    let max_concurrency = pgworld_core::queue::pods::max_concurrency_of(b.get("maxConcurrency"))?;
    let mut urls = Vec::with_capacity(3);
    for which in ["workflow", "step", "webhook"] {
        match endpoints.get(which) {
            Some(Value::String(u)) if queue::valid_endpoint(u) => urls.push(u.clone()),
            None | Some(Value::Null) => return Err(WfError::bad_request(HANDLER_REQUIRED)),
            Some(_) => return Err(WfError::bad_request(format!("endpoint URL is invalid: {which}"))),
        }
    }
    Spi::connect_mut(|c| {
        // Registrations of one app serialize, so the service-scoped rules see a stable set.
        // On the app's row, not an advisory lock: any role can take advisory locks, none can lock this row.
        lock_app(c, app);
        if facts::version_expired(c, app, &version) {
            return Err(facts::expired_error(&version));
        }
        let service_held_by_other = !service_scoped
            && db::exists(
                c,
                "SELECT 1 FROM workflow.handlers WHERE application_id = $1 AND deployment_version = $2 AND service_scoped \
                 AND pod_id <> $3",
                &[app.into(), version.as_str().into(), pod.as_str().into()],
            );
        if service_held_by_other {
            return Ok(json!({"registered": true}));
        }
        db::update(
            c,
            "INSERT INTO workflow.handlers (application_id, pod_id, deployment_version, service_scoped, workflow_url, step_url, \
                                            webhook_url, spec_version, core_version, max_concurrency) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (application_id, pod_id) DO UPDATE SET deployment_version = EXCLUDED.deployment_version, \
               service_scoped = EXCLUDED.service_scoped, workflow_url = EXCLUDED.workflow_url, step_url = EXCLUDED.step_url, \
               webhook_url = EXCLUDED.webhook_url, spec_version = EXCLUDED.spec_version, \
               core_version = EXCLUDED.core_version, max_concurrency = EXCLUDED.max_concurrency, last_seen = now()",
            &[
                app.into(),
                pod.as_str().into(),
                version.as_str().into(),
                service_scoped.into(),
                urls[0].as_str().into(),
                urls[1].as_str().into(),
                urls[2].as_str().into(),
                spec_version.into(),
                core_version.into(),
                max_concurrency.into(),
            ],
        );
        if service_scoped {
            db::update(
                c,
                "DELETE FROM workflow.handlers WHERE application_id = $1 AND deployment_version = $2 AND pod_id <> $3",
                &[app.into(), version.as_str().into(), pod.as_str().into()],
            );
        }
        // Messages set aside as unroutable become claimable again.
        db::update(
            c,
            concat!(
                "UPDATE workflow.messages SET unroutable_since = NULL WHERE application_id = $1 AND deployment_version = $2 \
             AND state IN (",
                waiting_states!(),
                ") AND unroutable_since IS NOT NULL"
            ),
            &[app.into(), version.as_str().into()],
        );
        crate::pings::queue(c);
        Ok(json!({"registered": true}))
    })
}

/// The optional `sdk` of a registration: `{"specVersion": n, "workflowCoreVersion": "x.y.z"}`,
/// what the pods run, so a start from SQL writes what they read.
fn sdk_of(sdk: Option<&Value>) -> WfResult<(Option<i32>, Option<String>)> {
    let bad = || WfError::bad_request("sdk must be {specVersion: integer, workflowCoreVersion: string}");
    let Some(sdk) = sdk.filter(|v| !v.is_null()) else {
        return Ok((None, None));
    };
    let m = sdk.as_object().ok_or_else(bad)?;
    let spec = match m.get("specVersion") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().and_then(|n| i32::try_from(n).ok()).filter(|n| (1..=99).contains(n)).ok_or_else(bad)?),
    };
    let core = match m.get("workflowCoreVersion") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 64 => Some(s.clone()),
        Some(_) => return Err(bad()),
    };
    Ok((spec, core))
}

/// `workflow.handler_deregister(pod_id)`.
pub fn handler_deregister(pod_id: &str) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    Spi::connect_mut(|c| {
        // Idempotent (200 either way); the answer says whether the pod was registered.
        let removed = db::update_any(
            c,
            "DELETE FROM workflow.handlers WHERE application_id = $1 AND pod_id = $2 RETURNING 1",
            &[app.into(), pod_id.into()],
        );
        Ok(json!({"deregistered": removed}))
    })
}

/// `workflow.version_status(deployment_id)` (admin): the version's live work, as
/// `workflow._version_work` (sql/operate.sql) counts it for versions_overview too.
pub fn version_status(version: &str) -> WfResult<Value> {
    tenancy::require_admin()?;
    let app = tenancy::current_app()?;
    Spi::connect(|c| {
        let counts = db::select(
            c,
            "SELECT active_runs, pending_hooks, pending_waits, queued_messages FROM workflow._version_work($1, $2)",
            &[app.into(), version.into()],
        )
        .next()
        .map(|r| [r.bigint(1), r.bigint(2), r.bigint(3), r.bigint(4)])
        .ok_or("no row")
        .or_internal("version work");
        Ok(json!({
            "activeRuns": counts[0],
            "pendingHooks": counts[1],
            "pendingWaits": counts[2],
            "queuedMessages": counts[3],
            "drained": counts.iter().all(|n| *n == 0),
            "status": version_status_of(c, app, version).as_str(),
        }))
    })
}

/// `workflow.version_expire(deployment_id)` (admin): force-expire (lifecycle.md §2.4).
pub fn version_expire(version: &str) -> WfResult<Value> {
    tenancy::require_admin()?;
    let app = tenancy::current_app()?;
    Spi::connect_mut(|c| Ok(expire(c, app, version)))
}

fn set_status(c: &mut SpiClient<'_>, app: i32, version: &str, status: VersionStatus) {
    db::update(
        c,
        "INSERT INTO workflow.deployment_versions (application_id, deployment_id, status) VALUES ($1, $2, $3) \
         ON CONFLICT (application_id, deployment_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now()",
        &[app.into(), version.into(), status.as_str().into()],
    );
}

fn expire(c: &mut SpiClient<'_>, app: i32, version: &str) -> Value {
    // Expired first, so nothing new (enqueue, run creation, registration) enters from here on.
    set_status(c, app, version, VersionStatus::Expired);
    let runs: Vec<String> = db::update(
        c,
        "SELECT run_id FROM workflow.runs WHERE application_id = $1 AND deployment_id = $2 AND status IN ('pending', 'running') \
         ORDER BY run_id FOR UPDATE",
        &[app.into(), version.into()],
    )
    .map(|r| r.text(1))
    .collect();
    let (mut cancelled, mut hooks, mut waits) = (0i64, 0i64, 0i64);
    let reason = format!("deployment version {version} expired");
    for run_id in &runs {
        let live = db::select(
            c,
            "SELECT (SELECT count(*) FROM workflow.hooks WHERE application_id = $1 AND run_id = $2 AND status <> 'disposed'), \
                    (SELECT count(*) FROM workflow.waits WHERE application_id = $1 AND run_id = $2 AND status = 'waiting')",
            &[app.into(), run_id.as_str().into()],
        )
        .next()
        .map(|r| (r.bigint(1), r.bigint(2)))
        .unwrap_or_default();
        let done = tenancy::acting_for(app, || {
            events::create_on_behalf(run_id, json!({"eventType": "run_cancelled", "eventData": {"cancelReason": reason}}))
        });
        if done.is_ok() {
            cancelled += 1;
            hooks += live.0;
            waits += live.1;
        }
    }
    let dead_lettered = messages::settle_all(
        c,
        concat!(
            "workflow.messages m WHERE m.application_id = $1 AND m.deployment_version = $2 AND m.state IN (",
            waiting_states!(),
            ") FOR UPDATE"
        ),
        &[app.into(), version.into()],
        &Happening::VersionExpired,
    );
    let handlers = db::update(
        c,
        "DELETE FROM workflow.handlers WHERE application_id = $1 AND deployment_version = $2 RETURNING 1",
        &[app.into(), version.into()],
    )
    .len();
    json!({
        "cancelledRuns": cancelled,
        "deadLetteredMessages": dead_lettered,
        "disposedHooks": hooks,
        "completedWaits": waits,
        "deregisteredHandlers": handlers,
    })
}

/// `workflow.version_notify(body)` (admin): `{applicationId, deploymentVersion, status}`.
pub fn version_notify(body: &Value) -> WfResult<Value> {
    tenancy::require_admin()?;
    let b = body.as_object().ok_or_else(|| WfError::bad_request("request body must be a JSON object"))?;
    let required = "applicationId, deploymentVersion and status are required";
    let label = text_field(b, "applicationId")?.ok_or_else(|| WfError::bad_request(required))?;
    let version = match b.get("deploymentVersion") {
        Some(Value::String(s)) if s.len() <= queue::MAX_DEPLOYMENT_ID_BYTES => s.clone(),
        Some(Value::String(_)) => {
            let most = queue::MAX_DEPLOYMENT_ID_BYTES;
            return Err(WfError::bad_request(format!("deploymentVersion must be at most {most} bytes")));
        }
        _ => return Err(WfError::bad_request(required)),
    };
    let status = match b.get("status") {
        Some(Value::String(s)) => VersionStatus::parse(s).ok_or_else(|| WfError::bad_request(format!("unknown status: {s}")))?,
        _ => return Err(WfError::bad_request(required)),
    };
    Spi::connect_mut(|c| {
        let app = tenancy::with_cross_app(|| tenancy::lookup_label(c, &label)).ok_or_else(|| tenancy::app_not_found(&label))?;
        tenancy::acting_for(app, || {
            if status == VersionStatus::Expired {
                expire(c, app, &version);
            } else {
                lock_app(c, app);
                if version_status_of(c, app, &version) == VersionStatus::Expired {
                    return Err(WfError::new(Code::VersionStillExpired, format!("Deployment version {version} is expired")));
                }
                set_status(c, app, &version, status);
            }
            Ok(json!({"updated": true}))
        })
    })
}

/// `workflow.quotas_get()` (admin).
pub fn quotas_get() -> WfResult<Value> {
    tenancy::require_admin()?;
    let app = tenancy::current_app()?;
    Spi::connect(|c| {
        let row = db::select(
            c,
            "SELECT max_runs, max_events_per_run, max_queue_per_minute FROM workflow.quotas WHERE application_id = $1",
            &[app.into()],
        )
        .next()
        .map(|r| [r.opt_int(1), r.opt_int(2), r.opt_int(3)]);
        let set = row.unwrap_or([None, None, None]);
        Ok(json!({
            "maxRuns": set[0].map_or(quotas::DEFAULT_MAX_RUNS, i64::from),
            "maxEventsPerRun": set[1].map_or(quotas::DEFAULT_MAX_EVENTS_PER_RUN, i64::from),
            "maxQueuePerMinute": set[2].map_or(q::DEFAULT_MAX_QUEUE_PER_MINUTE, i64::from),
            "isDefault": set.iter().all(Option::is_none),
        }))
    })
}

/// `workflow.quotas_put(body)` (admin): changes only the fields named.
pub fn quotas_put(body: &Value) -> WfResult<Value> {
    tenancy::require_admin()?;
    let app = tenancy::current_app()?;
    let b = body.as_object().ok_or_else(|| WfError::bad_request("request body must be a JSON object"))?;
    let mut values: [Option<i32>; 3] = [None; 3];
    for (i, k) in ["maxRuns", "maxEventsPerRun", "maxQueuePerMinute"].iter().enumerate() {
        match b.get(*k) {
            None => {}
            Some(v) => {
                let n = v.as_i64().filter(|n| (1..=i64::from(i32::MAX)).contains(n));
                values[i] = Some(
                    n.and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(|| WfError::bad_request(format!("{k} must be an integer between 1 and 2147483647")))?,
                );
            }
        }
    }
    if values.iter().all(Option::is_none) {
        return Err(WfError::bad_request("at least one quota field is required: maxRuns, maxEventsPerRun, maxQueuePerMinute"));
    }
    Spi::connect_mut(|c| {
        db::update(
            c,
            "INSERT INTO workflow.quotas AS q (application_id, max_runs, max_events_per_run, max_queue_per_minute) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (application_id) DO UPDATE SET \
               max_runs = coalesce(EXCLUDED.max_runs, q.max_runs), \
               max_events_per_run = coalesce(EXCLUDED.max_events_per_run, q.max_events_per_run), \
               max_queue_per_minute = coalesce(EXCLUDED.max_queue_per_minute, q.max_queue_per_minute), updated_at = now()",
            &[app.into(), values[0].into(), values[1].into(), values[2].into()],
        );
        Ok(())
    })?;
    let mut effective = quotas_get()?;
    if let Value::Object(m) = &mut effective {
        m.remove("isDefault");
    }
    Ok(effective)
}

/// Serializes handler registrations and version changes of one app until commit.
fn lock_app(c: &mut SpiClient<'_>, app: i32) {
    db::update(c, "SELECT 1 FROM workflow.applications WHERE application_id = $1 FOR NO KEY UPDATE", &[app.into()]);
}
