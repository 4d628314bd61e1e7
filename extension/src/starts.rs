//! Starting and resuming workflows from SQL, inside the caller's transaction, exactly as the WDK's
//! `start()` and `resumeHook()` do from Node (the same events, serialized and encrypted in the
//! WDK's formats for the run's SDK, and the same queue message), and reading a run's outcome.

use crate::db::{self, Row};
use crate::{events, ffi, queue as q, tenancy};
use pgrx::spi::SpiClient;
use pgrx::Spi;
use pgworld_core::error::Code;
use pgworld_core::payload::{Mode, Payload};
use pgworld_core::queue as cq;
use pgworld_core::wdk_value::{self, ReadError};
use pgworld_core::{keys, sdk, WfError, WfResult};
use serde_json::{json, Value};

fn run_key(c: &SpiClient<'_>, app: i32, run_id: &str) -> Option<[u8; 32]> {
    crate::keys::app_secret(c, app).map(|s| keys::run_key(&s, run_id))
}

/// A value as the WDK stores it: format-prefixed bytes, sealed when `key`; in the envelope
/// payload form event_create takes.
fn stored_value(value: &Value, key: Option<&[u8; 32]>) -> WfResult<Value> {
    let bad = |e: String| WfError::bad_request(format!("the value cannot be serialized: {e}"));
    let nonce: [u8; wdk_value::NONCE_BYTES] = ffi::random_bytes("an encryption nonce");
    let bytes = wdk_value::write(value, key, nonce).map_err(bad)?;
    Ok(Payload::Bytes(bytes).to_wire(Mode::Envelope))
}

/// What the deployment's SDK writes: its pods' registration, else its newest run, else WDK 4's
/// spec version with an unknown core (which reads only plain values).
fn deployment_sdk(c: &SpiClient<'_>, app: i32, deployment: &str) -> (i32, Option<String>) {
    let registered = db::select(
        c,
        "SELECT spec_version, core_version FROM workflow.handlers \
         WHERE application_id = $1 AND deployment_version = $2 AND spec_version IS NOT NULL \
         ORDER BY registered_at DESC LIMIT 1",
        &[app.into(), deployment.into()],
    )
    .next()
    .map(|r| (r.opt_int(1).unwrap_or(sdk::SPEC_DEFAULT), r.opt_text(2)));
    registered.unwrap_or_else(|| {
        db::select(
            c,
            "SELECT spec_version, execution_context ->> 'workflowCoreVersion' FROM workflow.runs \
             WHERE application_id = $1 AND deployment_id = $2 ORDER BY created_at DESC LIMIT 1",
            &[app.into(), deployment.into()],
        )
        .next()
        .map_or((sdk::SPEC_DEFAULT, None), |r| (r.int(1), r.opt_text(2)))
    })
}

/// Queues a workflow message for `run_id` as the WDK does: CBOR from spec version 3 on.
fn queue_workflow(workflow_name: &str, deployment: &str, spec: i32, message: Value) -> WfResult<Value> {
    let queue_name = cq::workflow_queue(None, workflow_name);
    q::enqueue(Ok(q::envelope(&queue_name, deployment, message, spec >= sdk::SPEC_CBOR_QUEUE)))
}

/// `workflow.start(workflow_name, input, options)`.
pub fn start(workflow_name: &str, input: &Value, options: &Value) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    if !sdk::valid_workflow_name(workflow_name) {
        return Err(WfError::bad_request(
            "workflow_name must be a WDK workflow id: letters, digits and _ - . / @ ( ) [ ] (see workflow.runs.workflow_name)",
        ));
    }
    let args = Value::Array(sdk::start_input(input)?.clone());
    let opts = sdk::start_options(options)?;
    Spi::connect(|c| {
        let deployment = match opts.deployment_id.clone() {
            Some(d) => d,
            None => crate::facts::newest_served(c, app).ok_or_else(|| {
                WfError::bad_request("no active deployment version has registered pods: name one in options.deploymentId")
            })?,
        };
        let (known_spec, known_core) = deployment_sdk(c, app, &deployment);
        let spec = opts.spec_version.unwrap_or(known_spec);
        let core = opts.core_version.clone().or(known_core);
        let run_id = events::mint_run_id(ffi::now_micros());
        let key = run_key(c, app, &run_id).filter(|_| sdk::reads_encrypted(core.as_deref()));
        let stored = stored_value(&args, key.as_ref())?;
        let mut context = json!({"features": {"encryption": key.is_some()}});
        if let Some(core) = &core {
            context["workflowCoreVersion"] = json!(core);
        }
        let data =
            json!({"deploymentId": deployment, "workflowName": workflow_name, "input": stored, "executionContext": context});
        events::event_create(
            &run_id,
            &json!({"$payload": "envelope", "resolveData": "none"}),
            &json!({"eventType": "run_created", "specVersion": spec, "eventData": data}),
        )?;
        let mut message = json!({"runId": run_id});
        if spec >= sdk::SPEC_CBOR_QUEUE {
            message["runInput"] = json!({"input": stored, "deploymentId": deployment, "workflowName": workflow_name,
                                         "specVersion": spec, "executionContext": context});
        }
        let queued = queue_workflow(workflow_name, &deployment, spec, message)?;
        Ok(json!({"runId": run_id, "deploymentId": deployment, "specVersion": spec, "encrypted": key.is_some(),
                  "messageId": queued["messageId"]}))
    })
}

/// `workflow.hook_resume(token, payload)`.
pub fn hook_resume(token: &str, payload: &Value) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    Spi::connect(|c| {
        let hook = db::select(
            c,
            "SELECT run_id, hook_id FROM workflow.hooks WHERE application_id = $1 AND token = $2 AND status <> 'disposed' \
             ORDER BY hook_seq DESC LIMIT 1",
            &[app.into(), token.into()],
        )
        .next()
        .map(|r| (r.text(1), r.text(2)));
        let (run_id, hook_id) =
            hook.ok_or_else(|| WfError::new(Code::HookNotFound, format!("Hook with token {token} not found")))?;
        let run = crate::facts::run_facts(c, app, &run_id)?;
        let core = run.execution_context.as_ref().and_then(|x| x.get("workflowCoreVersion")).and_then(Value::as_str);
        let key = run_key(c, app, &run_id).filter(|_| sdk::reads_encrypted(core));
        let stored = stored_value(payload, key.as_ref())?;
        let data = json!({"token": token, "payload": stored});
        let reply = events::event_create(
            &run_id,
            &json!({"$payload": "envelope", "resolveData": "none"}),
            &json!({"eventType": "hook_received", "specVersion": run.spec_version, "correlationId": hook_id, "eventData": data}),
        )?;
        // The continuation goes to the run's own deployment, whichever version is newest.
        queue_workflow(&run.workflow_name, &run.deployment_id, run.spec_version, json!({"runId": run_id}))?;
        Ok(json!({"runId": run_id, "hookId": hook_id, "eventId": reply["event"]["eventId"]}))
    })
}

/// A stored output or error as JSON: WDK bytes opened with the run's key, inflated and parsed;
/// a JSON value (written by a client that is not the WDK, or an error object) as it is.
fn decoded(c: &SpiClient<'_>, app: i32, run_id: &str, stored: &Value) -> WfResult<Value> {
    match Payload::from_stored(stored) {
        Payload::Json(v) => Ok(v),
        Payload::Bytes(b) => wdk_value::read(&b, run_key(c, app, run_id).as_ref()).map_err(|e| match e {
            ReadError::NoKey => WfError::bad_request("the run's value is encrypted and the app has no secret any more"),
            ReadError::Undecryptable => WfError::bad_request("the run's value does not open with the app's secret"),
            ReadError::Invalid(m) => WfError::bad_request(format!("the run's value cannot be read as JSON: {m}")),
        }),
    }
}

/// `workflow.run_output(run_id)`: `{"runId", "status", "output"}` or `{…, "error", "errorCode"}`.
pub fn run_output(run_id: &str) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    Spi::connect(|c| {
        let row = db::select(
            c,
            "SELECT status, output, error, error_code FROM workflow.runs WHERE application_id = $1 AND run_id = $2",
            &[app.into(), run_id.into()],
        )
        .next()
        .map(|r| (r.text(1), r.json(2), r.json(3), r.opt_text(4)));
        let (status, output, error, code) =
            row.ok_or_else(|| WfError::new(Code::RunNotFound, format!("Workflow run \"{run_id}\" not found")))?;
        let mut out = json!({"runId": run_id, "status": status});
        match status.as_str() {
            "pending" | "running" => {
                return Err(WfError::new(Code::TooEarly, format!("Workflow run \"{run_id}\" has not finished (status {status})")))
            }
            "completed" => {
                out["output"] = output.as_ref().map(|o| decoded(c, app, run_id, o)).transpose()?.unwrap_or(Value::Null)
            }
            _ => {
                if let Some(e) = &error {
                    out["error"] = decoded(c, app, run_id, e)?;
                }
                if let Some(code) = code {
                    out["errorCode"] = json!(code);
                }
            }
        }
        Ok(out)
    })
}
