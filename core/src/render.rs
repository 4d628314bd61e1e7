//! Entities to their wire JSON (spec/http-api.md §2): camelCase, "when set" fields omitted,
//! payloads in the request's encoding, `resolveData=none` applied.

use crate::model::*;
use crate::payload::{event_data_to_wire, stored_to_wire};
use crate::request::{EventType, ReadOpts};
use crate::ts::{to_iso, Micros};
use serde_json::{Map, Value};

struct Obj(Map<String, Value>);

impl Obj {
    fn new() -> Self {
        Obj(Map::new())
    }
    fn put(&mut self, k: &str, v: impl Into<Value>) -> &mut Self {
        self.0.insert(k.to_owned(), v.into());
        self
    }
    fn opt(&mut self, k: &str, v: Option<impl Into<Value>>) -> &mut Self {
        if let Some(v) = v {
            self.0.insert(k.to_owned(), v.into());
        }
        self
    }
    fn ts(&mut self, k: &str, v: Option<Micros>) -> &mut Self {
        self.opt(k, v.map(to_iso))
    }
    fn payload(&mut self, k: &str, v: &Option<Value>, o: ReadOpts) -> &mut Self {
        self.opt(k, v.as_ref().map(|p| stored_to_wire(p, o.mode)))
    }
    fn done(&mut self) -> Value {
        Value::Object(std::mem::take(&mut self.0))
    }
}

pub fn run_json(r: &Run, o: ReadOpts) -> Value {
    let mut j = Obj::new();
    j.put("runId", r.run_id.as_str())
        .put("status", r.status.as_str())
        .put("deploymentId", r.deployment_id.as_str())
        .put("workflowName", r.workflow_name.as_str())
        .put("specVersion", r.spec_version)
        .opt("executionContext", r.execution_context.clone());
    if !o.resolve_none {
        j.payload("input", &r.input, o);
        if r.status == RunStatus::Completed {
            j.payload("output", &r.output, o);
        }
    }
    if r.status == RunStatus::Failed {
        j.payload("error", &r.error, o);
    }
    j.opt("errorCode", r.error_code.clone())
        .put("attributes", Value::Object(r.attributes.clone()))
        .opt("encryptionPublicKey", r.encryption_public_key.clone())
        .ts("createdAt", Some(r.created_at))
        .ts("updatedAt", Some(r.updated_at))
        .ts("startedAt", r.started_at)
        .ts("completedAt", r.completed_at.filter(|_| r.status.is_terminal()))
        .ts("expiredAt", r.expired_at.filter(|_| r.status == RunStatus::Expired))
        .done()
}

pub fn step_json(s: &Step, o: ReadOpts) -> Value {
    let mut j = Obj::new();
    j.put("runId", s.run_id.as_str())
        .put("stepId", s.step_id.as_str())
        .put("stepName", s.step_name.as_str())
        .put("status", s.status.as_str())
        .put("attempt", s.attempt)
        .put("specVersion", s.spec_version);
    if !o.resolve_none {
        j.payload("input", &s.input, o);
        if s.status == StepStatus::Completed {
            j.payload("output", &s.output, o);
        }
    }
    j.payload("error", &s.error, o)
        .ts("retryAfter", s.retry_after)
        .ts("createdAt", Some(s.created_at))
        .ts("updatedAt", Some(s.updated_at))
        .ts("startedAt", s.started_at)
        .ts("completedAt", s.completed_at)
        .done()
}

pub fn hook_json(h: &Hook, o: ReadOpts) -> Value {
    let mut j = Obj::new();
    j.put("runId", h.run_id.as_str())
        .put("hookId", h.hook_id.as_str())
        .put("token", h.token.as_str())
        .put("status", h.status.as_str())
        .put("ownerId", h.owner_id.as_str())
        .put("projectId", h.project_id.as_str())
        .put("environment", h.environment.as_str());
    if !o.resolve_none {
        j.payload("metadata", &h.metadata, o);
    }
    j.put("isWebhook", h.is_webhook)
        .opt("isSystem", h.is_system)
        .put("specVersion", h.spec_version)
        .ts("createdAt", Some(h.created_at))
        .ts("receivedAt", h.received_at)
        .ts("disposedAt", h.disposed_at)
        .done()
}

pub fn wait_json(w: &Wait) -> Value {
    Obj::new()
        .put("waitId", w.wait_id.as_str())
        .put("runId", w.run_id.as_str())
        .put("status", w.status.as_str())
        .ts("resumeAt", w.resume_at)
        .ts("completedAt", w.completed_at)
        .ts("createdAt", Some(w.created_at))
        .ts("updatedAt", Some(w.updated_at))
        .put("specVersion", w.spec_version)
        .done()
}

/// `strip` is false for the skipped-event report, which always carries full data.
pub fn event_json(e: &Event, o: ReadOpts, strip: bool) -> Value {
    let mut data = e.event_data.clone();
    if let Some(d) = data.as_mut() {
        if strip && o.resolve_none {
            if let Some(f) = EventType::stripped_field(&e.event_type) {
                d.remove(f);
            }
        }
        event_data_to_wire(d, o.mode);
    }
    let mut j = Obj::new();
    j.put("eventId", crate::ids::event_id(e.slot))
        .put("runId", e.run_id.as_str())
        .put("eventType", e.event_type.as_str())
        .opt("correlationId", e.correlation_id.clone())
        .opt("eventData", data.filter(|d| !d.is_empty()).map(Value::Object))
        .put("specVersion", e.spec_version)
        .ts("createdAt", Some(e.created_at))
        .opt("resumeId", e.resume_id.clone())
        .done()
}

/// `{data, cursor, hasMore}`.
pub fn page(data: Vec<Value>, cursor: Option<String>, has_more: bool) -> Value {
    let mut m = Map::new();
    m.insert("data".into(), Value::Array(data));
    m.insert("cursor".into(), cursor.map_or(Value::Null, Value::String));
    m.insert("hasMore".into(), Value::Bool(has_more));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Mode;
    use serde_json::json;

    fn run() -> Run {
        Run {
            run_id: "wrun_1".into(),
            status: RunStatus::Completed,
            deployment_id: "v1".into(),
            workflow_name: "wf".into(),
            spec_version: 6,
            event_count: 4,
            execution_context: None,
            input: Some(json!({"$bytes": "AAEC"})),
            output: Some(json!({"ok": true})),
            error: Some(json!("stale")),
            error_code: None,
            attributes: Map::new(),
            encryption_public_key: None,
            created_at: 0,
            updated_at: 1_000,
            started_at: Some(1_000),
            completed_at: Some(2_000),
            expired_at: None,
        }
    }

    #[test]
    fn run_shape_and_resolve_data() {
        let full = run_json(&run(), ReadOpts::default());
        assert_eq!(full["input"], json!("AAEC"));
        assert_eq!(full["output"], json!({"ok": true}));
        assert!(full.get("error").is_none(), "error only on failed runs");
        assert_eq!(full["completedAt"], json!("1970-01-01T00:00:00.002Z"));
        assert!(full.get("expiredAt").is_none() && full.get("executionContext").is_none());
        let none = run_json(&run(), ReadOpts { mode: Mode::Envelope, resolve_none: true });
        assert!(none.get("input").is_none() && none.get("output").is_none());
        let env = run_json(&run(), ReadOpts { mode: Mode::Envelope, resolve_none: false });
        assert_eq!(env["input"], json!({"__type": "Uint8Array", "data": "AAEC"}));
    }

    #[test]
    fn event_strips_only_its_payload_field() {
        let e = Event {
            run_id: "r".into(),
            slot: 2,
            seq: 9,
            event_type: "step_completed".into(),
            correlation_id: Some("step_1".into()),
            event_data: Some(json!({"result": {"$bytes": "AAEC"}, "stepName": "s"}).as_object().cloned().unwrap_or_default()),
            spec_version: 6,
            created_at: 0,
            resume_id: None,
            resume_digest: Some("d".into()),
        };
        let none = ReadOpts { mode: Mode::Compat, resolve_none: true };
        assert_eq!(event_json(&e, none, true)["eventData"], json!({"stepName": "s"}));
        assert_eq!(event_json(&e, none, false)["eventData"]["result"], json!("AAEC"));
        assert_eq!(event_json(&e, none, true)["eventId"], json!("evnt_00000000000000000000000002"));
        let mut only_payload = e.clone();
        only_payload.event_data = Some(json!({"result": 1}).as_object().cloned().unwrap_or_default());
        assert!(event_json(&only_payload, none, true).get("eventData").is_none());
    }
}
