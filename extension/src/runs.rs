//! Run actions that touch the queue (http-api.md §4.4): cancel, wake-up, replay, and the
//! workflow template. Every event they write goes through the event machinery.

use crate::db::{self, Row};
use crate::events::create_on_behalf as create_event;
use crate::facts::{self, run_facts};
use crate::queue as q;
use crate::{messages, reads, tenancy};
use pgrx::spi::SpiClient;
use pgrx::Spi;
use pgworld_core::payload::{stored_to_wire, Mode};
use pgworld_core::queue::plan::Happening;
use pgworld_core::request::query_str;
use pgworld_core::template::{template_steps, TemplateStep};
use pgworld_core::waiting_states;
use pgworld_core::{queue, Code, WfError, WfResult};
use serde_json::{json, Map, Value};

fn body_reason(body: &Value) -> WfResult<Option<String>> {
    match body.get("cancelReason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 512 => Ok(Some(s.clone())),
        Some(_) => Err(WfError::bad_request("cancelReason must be a string of at most 512 characters")),
    }
}

/// `workflow.run_cancel(run_id, body)`: cancels a live run and dead-letters its queued messages.
pub fn cancel(run_id: &str, body: &Value) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    let reason = body_reason(body)?;
    Spi::connect_mut(|c| {
        let run = run_facts(c, app, run_id)?;
        match run.status.as_str() {
            "pending" | "running" => {
                let mut data = Map::new();
                if let Some(r) = reason {
                    data.insert("cancelReason".into(), Value::String(r));
                }
                create_event(run_id, json!({"eventType": "run_cancelled", "eventData": data}))?;
                messages::settle_all(
                    c,
                    concat!(
                        "workflow.messages m WHERE m.application_id = $1 AND m.run_id = $2 AND m.state IN (",
                        waiting_states!(),
                        ") FOR UPDATE"
                    ),
                    &[app.into(), run_id.into()],
                    &Happening::RunCancelled,
                );
            }
            "cancelled" => {}
            other => return Err(WfError::new(Code::RunTerminal, format!("Run {run_id} is in terminal state: {other}"))),
        }
        Ok(())
    })?;
    reads::run_get(run_id, &json!({}))
}

/// `workflow.run_wake_up(run_id, body)`: completes the run's waiting waits now and makes sure a
/// workflow message will replay it.
pub fn wake_up(run_id: &str) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    Spi::connect_mut(|c| {
        let run = run_facts(c, app, run_id)?;
        if !matches!(run.status.as_str(), "pending" | "running") {
            return Ok(json!({"stoppedCount": 0}));
        }
        let waits: Vec<String> = db::select(
            c,
            "SELECT wait_id FROM workflow.waits WHERE application_id = $1 AND run_id = $2 AND status = 'waiting' ORDER BY created_at",
            &[app.into(), run_id.into()],
        )
        .map(|r| r.text(1))
        .collect();
        let mut stopped = 0i64;
        for wait_id in &waits {
            if create_event(run_id, json!({"eventType": "wait_completed", "correlationId": wait_id})).is_ok() {
                stopped += 1;
            }
        }
        if stopped > 0 {
            let promoted = db::update(
                c,
                "UPDATE workflow.messages SET state = 'pending', available_at = now(), updated_at = now() \
                 WHERE application_id = $1 AND run_id = $2 AND kind = 'workflow' AND state = 'deferred' RETURNING 1",
                &[app.into(), run_id.into()],
            )
            .len();
            let queued = db::exists(
                c,
                concat!(
                    "SELECT 1 FROM workflow.messages WHERE application_id = $1 AND run_id = $2 AND kind = 'workflow' \
                 AND state IN (",
                    waiting_states!(),
                    ")"
                ),
                &[app.into(), run_id.into()],
            );
            if promoted > 0 {
                crate::pings::queue(c);
            }
            if !queued {
                let queue_name = workflow_queue(c, app, run_id, &run.workflow_name);
                q::enqueue_continuation(c, app, &queue_name, run_id, &run.deployment_id, false);
            }
        }
        Ok(json!({"stoppedCount": stopped}))
    })
}

/// The run's workflow queue (queue.md §2.1): its earliest workflow message's, else the default.
fn workflow_queue(c: &SpiClient<'_>, app: i32, run_id: &str, workflow_name: &str) -> String {
    db::select(
        c,
        "SELECT queue_name FROM workflow.messages WHERE application_id = $1 AND run_id = $2 AND kind = 'workflow' ORDER BY id LIMIT 1",
        &[app.into(), run_id.into()],
    )
    .next()
    .map(|r| r.text(1))
    .unwrap_or_else(|| queue::workflow_queue(None, workflow_name))
}

/// `workflow.run_replay(run_id, body)`: a new run of the same workflow, input and version,
/// queued on the original's workflow queue.
pub fn replay(run_id: &str, body: &Value) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    let (new_run, queue_name, version) = Spi::connect_mut(|c| {
        let run = run_facts(c, app, run_id)?;
        if facts::version_expired(c, app, &run.deployment_id) {
            return Err(facts::expired_error(&run.deployment_id));
        }
        let mut data = Map::new();
        data.insert("workflowName".into(), json!(run.workflow_name));
        data.insert("deploymentId".into(), json!(run.deployment_id));
        if let Some(input) = &run.input {
            data.insert("input".into(), stored_to_wire(input, Mode::Envelope));
        }
        if let Some(ctx) = run.execution_context.clone() {
            data.insert("executionContext".into(), ctx);
        }
        data.insert("replayedFrom".into(), json!(run_id));
        let created =
            create_event("null", json!({"eventType": "run_created", "eventData": data, "specVersion": run.spec_version}))?;
        let new_run = created.pointer("/run/runId").and_then(Value::as_str).unwrap_or_default().to_owned();
        let queue_name = workflow_queue(c, app, run_id, &run.workflow_name);
        Ok((new_run, queue_name, run.deployment_id))
    })?;
    Spi::connect_mut(|c| q::enqueue_continuation(c, app, &queue_name, &new_run, &version, false));
    let mode = if body.get("$payload").and_then(Value::as_str) == Some("envelope") { "envelope" } else { "compat" };
    reads::run_get(&new_run, &json!({"$payload": mode}))
}

/// `workflow.workflow_template(workflow_name, query)`: the step layout of the latest completed run.
pub fn template(workflow_name: &str, query: &Value) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    let deployment = query_str(query, "deploymentId")?.map(str::to_owned);
    Spi::connect(|c| {
        let source = db::select(
            c,
            "SELECT run_id FROM workflow.runs WHERE application_id = $1 AND workflow_name = $2 AND status = 'completed' \
               AND ($3::text IS NULL OR deployment_id = $3) ORDER BY created_at DESC, run_id DESC LIMIT 1",
            &[app.into(), workflow_name.into(), deployment.into()],
        )
        .next()
        .map(|r| r.text(1))
        .ok_or_else(|| WfError::new(Code::NoCompletedRun, "No completed run found for this workflow"))?;
        let steps: Vec<TemplateStep> = db::select(
            c,
            "SELECT step_name, created_at, started_at, completed_at FROM workflow.steps \
             WHERE application_id = $1 AND run_id = $2 ORDER BY created_slot",
            &[app.into(), source.as_str().into()],
        )
        .map(|r| TemplateStep { name: r.text(1), created_at: r.at(2), started_at: r.ts(3), completed_at: r.ts(4) })
        .collect();
        let key = [app.into(), source.as_str().into()];
        let has_hooks = db::exists(c, "SELECT 1 FROM workflow.hooks WHERE application_id = $1 AND run_id = $2", &key);
        let has_waits = db::exists(c, "SELECT 1 FROM workflow.waits WHERE application_id = $1 AND run_id = $2", &key);
        Ok(json!({"steps": template_steps(&steps), "hasHooks": has_hooks, "hasWaits": has_waits, "sourceRunId": source}))
    })
}
