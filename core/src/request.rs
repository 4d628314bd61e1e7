//! Parsing and shape validation of API inputs (spec/events.md §5, http-api.md §1.7–§1.8, §4.3).
//! Everything here is a 400; nothing here needs the database.

use crate::attributes::{self, Change};
use crate::error::{Code, WfError, WfResult};
use crate::payload::{event_data_from_wire, Mode};
use crate::ts::{self, Micros};
use serde_json::{Map, Value};

pub const MAX_CORRELATION_ID: usize = 256;
pub const MAX_RUN_ID: usize = 256;
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

text_enum!(
    /// Every event type pgworld knows, `hook_conflict` (written only by the server) included.
    EventType {
        RunCreated => "run_created", RunStarted => "run_started", RunCompleted => "run_completed",
        RunFailed => "run_failed", RunCancelled => "run_cancelled", RunExpired => "run_expired",
        AttrSet => "attr_set", StepCreated => "step_created", StepStarted => "step_started",
        StepCompleted => "step_completed", StepFailed => "step_failed", StepRetrying => "step_retrying",
        HookCreated => "hook_created", HookReceived => "hook_received", HookDisposed => "hook_disposed",
        WaitCreated => "wait_created", WaitCompleted => "wait_completed", HookConflict => "hook_conflict",
    }
);

impl EventType {
    /// Step, hook and wait events address their entity by correlationId.
    pub fn needs_correlation(self) -> bool {
        !self.is_run_event() && self != EventType::AttrSet && self != EventType::HookConflict
    }

    /// Client-creatable types; `hook_conflict` and `noop` are recognised but refused.
    fn parse_creatable(s: &str) -> WfResult<Self> {
        if s == "hook_conflict" || s == "noop" {
            return Err(WfError::new(Code::EventNotCreatable, format!("event type {s} cannot be created by clients")));
        }
        Self::parse(s).ok_or_else(|| WfError::bad_request(format!("unknown event type: {s}")))
    }

    pub fn is_run_event(self) -> bool {
        use EventType::*;
        matches!(self, RunCreated | RunStarted | RunCompleted | RunFailed | RunCancelled | RunExpired)
    }

    /// Terminal run events may exceed the per-run event quota by one (events.md §4.3).
    pub fn is_quota_exempt(self) -> bool {
        use EventType::*;
        matches!(self, RunCompleted | RunFailed | RunCancelled | RunExpired)
    }

    /// The payload field `resolveData=none` removes from eventData (events.md §8).
    pub fn stripped_field(event_type: &str) -> Option<&'static str> {
        match event_type {
            "run_created" | "run_started" | "step_created" | "step_started" => Some("input"),
            "run_completed" => Some("output"),
            "run_failed" | "step_failed" | "step_retrying" => Some("error"),
            "step_completed" => Some("result"),
            "hook_created" => Some("metadata"),
            "hook_received" => Some("payload"),
            _ => None,
        }
    }
}

/// How reads render entities: payload encoding and `resolveData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOpts {
    pub mode: Mode,
    pub resolve_none: bool,
}

impl ReadOpts {
    pub fn from_query(query: &Value) -> ReadOpts {
        ReadOpts {
            mode: if query.get("$payload").and_then(Value::as_str) == Some("envelope") { Mode::Envelope } else { Mode::Compat },
            resolve_none: query.get("resolveData").and_then(Value::as_str) == Some("none"),
        }
    }
}

/// Fields that bootstrap a run (`run_created`, resilient `run_started`).
pub const BOOTSTRAP_FIELDS: [&str; 7] =
    ["input", "deploymentId", "workflowName", "executionContext", "attributes", "allowReservedAttributes", "encryptionPublicKey"];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bootstrap {
    pub deployment_id: Option<String>,
    pub workflow_name: Option<String>,
    pub input: Option<Value>,
    pub execution_context: Option<Value>,
    pub attributes: Option<Map<String, Value>>,
    pub allow_reserved: bool,
    pub encryption_public_key: Option<String>,
}

impl Bootstrap {
    /// A missing run can be created by `run_started` only with both of these.
    pub fn can_create(&self) -> bool {
        self.deployment_id.is_some() && self.workflow_name.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LazyStep {
    pub step_name: String,
    pub input: Value,
    pub workflow_name: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewHook {
    pub token: String,
    pub metadata: Option<Value>,
    pub is_webhook: bool,
    pub is_system: Option<bool>,
    pub owner_id: String,
    pub project_id: String,
    pub environment: String,
}

/// The typed content of a create, per event type.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    RunCreated(Bootstrap),
    RunStarted(Bootstrap),
    RunCompleted { output: Option<Value> },
    RunFailed { error: Option<Value>, error_code: Option<String> },
    RunCancelled,
    RunExpired,
    AttrSet(Vec<Change>),
    StepCreated { step_name: String, input: Option<Value> },
    StepStarted { lazy: Option<LazyStep> },
    StepCompleted { result: Option<Value> },
    StepFailed { error: Option<Value> },
    StepRetrying { error: Option<Value>, retry_after: Option<Micros> },
    HookCreated(NewHook),
    HookReceived,
    HookDisposed,
    WaitCreated { resume_at: Micros },
    WaitCompleted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub event_type: EventType,
    /// `None` when the path said `null` (a `run_created` that lets the server mint the id).
    pub run_id: Option<String>,
    pub correlation_id: Option<String>,
    /// eventData as it will be stored (payload fields in stored form).
    pub event_data: Option<Map<String, Value>>,
    pub spec_version: Option<i32>,
    pub event_count: Option<i64>,
    pub resume_id: Option<String>,
    pub resume_digest: Option<String>,
    pub opts: ReadOpts,
    pub body: Body,
}

fn bad(msg: impl Into<String>) -> WfError {
    WfError::bad_request(msg)
}

fn opt_string(data: &Map<String, Value>, field: &str) -> WfResult<Option<String>> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{field} must be a string"))),
    }
}

fn opt_bounded_string(data: &Map<String, Value>, field: &str, max_chars: usize) -> WfResult<Option<String>> {
    let s = opt_string(data, field)?;
    if s.as_ref().is_some_and(|s| s.chars().count() > max_chars) {
        return Err(bad(format!("{field} must be at most {max_chars} characters")));
    }
    Ok(s)
}

/// Strings that end up in a btree key must stay well under its ~2.7 kB row limit.
pub const MAX_INDEXED_BYTES: usize = 2048;

fn check_indexed(field: &str, s: &str) -> WfResult<()> {
    if s.len() > MAX_INDEXED_BYTES {
        return Err(bad(format!("{field} must be at most {MAX_INDEXED_BYTES} bytes")));
    }
    Ok(())
}

fn required_nonempty(data: &Map<String, Value>, field: &str) -> WfResult<String> {
    match data.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(bad(format!("{field} must not be empty"))),
        None | Some(Value::Null) => Err(bad(format!("eventData.{field} is required"))),
        Some(_) => Err(bad(format!("{field} must be a string"))),
    }
}

fn opt_bool(data: &Map<String, Value>, field: &str) -> WfResult<Option<bool>> {
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(format!("{field} must be a boolean"))),
    }
}

/// A query parameter that is a non-negative safe integer, sent as a digit string (HTTP) or a
/// number (direct SQL).
pub fn query_count(query: &Value, field: &str) -> WfResult<Option<i64>> {
    let err = || bad(format!("{field} must be a non-negative safe integer"));
    match query.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            let n: i64 = s.parse().map_err(|_| err())?;
            (n <= MAX_SAFE_INTEGER).then_some(Some(n)).ok_or_else(err)
        }
        Some(Value::Number(n)) => n.as_i64().filter(|n| (0..=MAX_SAFE_INTEGER).contains(n)).map(Some).ok_or_else(err),
        Some(_) => Err(err()),
    }
}

fn query_string(query: &Value, field: &str, max: usize) -> WfResult<Option<String>> {
    match query.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(bad(format!("{field} must be at most {max} characters"))),
        Some(_) => Err(bad(format!("{field} must be a string"))),
    }
}

fn parse_bootstrap(data: &Map<String, Value>, require: bool) -> WfResult<Bootstrap> {
    let (deployment_id, workflow_name) = if require {
        (Some(required_nonempty(data, "deploymentId")?), Some(required_nonempty(data, "workflowName")?))
    } else {
        // Resilient start needs both as non-empty strings; otherwise they are just stored data.
        let nonempty = |f: &str| data.get(f).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        (nonempty("deploymentId"), nonempty("workflowName"))
    };
    for (field, v) in [("deploymentId", &deployment_id), ("workflowName", &workflow_name)] {
        if let Some(v) = v {
            check_indexed(field, v)?;
        }
    }
    let execution_context = match data.get("executionContext") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(bad("executionContext must be an object")),
    };
    let attributes = match data.get("attributes") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(WfError::new(Code::AttributeInvalid, "attributes must be an object of strings")),
    };
    let allow_reserved = match data.get("allowReservedAttributes") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(WfError::new(Code::AttributeInvalid, "allowReservedAttributes must be true when present")),
    };
    if let Some(attrs) = &attributes {
        attributes::check_initial(attrs, allow_reserved)?;
    }
    Ok(Bootstrap {
        deployment_id,
        workflow_name,
        input: data.get("input").cloned(),
        execution_context,
        attributes,
        allow_reserved,
        encryption_public_key: opt_string(data, "encryptionPublicKey")?,
    })
}

/// Parses `workflow.event_create(run_id, query, body)`.
pub fn parse_create(path_run_id: &str, query: &Value, body: &Value) -> WfResult<CreateRequest> {
    let body_obj = body.as_object().ok_or_else(|| bad("body must be a JSON object"))?;
    let event_type = match body_obj.get("eventType") {
        Some(Value::String(s)) => EventType::parse_creatable(s)?,
        None | Some(Value::Null) => return Err(bad("eventType is required")),
        Some(_) => return Err(bad("eventType must be a string")),
    };
    let run_id = if path_run_id == "null" {
        if event_type != EventType::RunCreated {
            return Err(WfError::new(Code::RunNotFound, "Run null not found"));
        }
        None
    } else {
        let n = path_run_id.chars().count();
        if n == 0 || n > MAX_RUN_ID {
            return Err(bad(format!("runId must be 1 to {MAX_RUN_ID} characters")));
        }
        Some(path_run_id.to_owned())
    };
    let correlation_id = opt_bounded_string(body_obj, "correlationId", MAX_CORRELATION_ID)?;
    if event_type.needs_correlation() && correlation_id.as_deref().is_none_or(str::is_empty) {
        return Err(bad(format!("correlationId is required for {}", event_type.as_str())));
    }
    let spec_version = match body_obj.get("specVersion") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(|| bad("specVersion must be an integer"))?),
    };
    let opts = ReadOpts::from_query(query);
    let mut event_data = match body_obj.get("eventData") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(bad("eventData must be an object")),
    };
    if let Some(d) = event_data.as_mut() {
        event_data_from_wire(d, opts.mode).map_err(bad)?;
    }
    let empty = Map::new();
    let data = event_data.as_ref().unwrap_or(&empty);
    let resume_id = query_string(query, "resumeId", 256)?;
    let resume_digest = query_string(query, "resumePayloadDigest", 256)?;
    let body = parse_body(event_type, data, event_data.is_some())?;
    Ok(CreateRequest {
        event_type,
        run_id,
        correlation_id,
        event_data,
        spec_version,
        event_count: query_count(query, "eventCount")?,
        resume_id,
        resume_digest,
        opts,
        body,
    })
}

fn parse_body(t: EventType, data: &Map<String, Value>, has_data: bool) -> WfResult<Body> {
    use EventType as T;
    Ok(match t {
        T::RunCreated => {
            if !has_data {
                return Err(bad("eventData is required for run_created"));
            }
            Body::RunCreated(parse_bootstrap(data, true)?)
        }
        T::RunStarted => Body::RunStarted(parse_bootstrap(data, false)?),
        T::RunCompleted => Body::RunCompleted { output: data.get("output").cloned() },
        T::RunFailed => {
            Body::RunFailed { error: data.get("error").cloned(), error_code: opt_bounded_string(data, "errorCode", 256)? }
        }
        T::RunCancelled => {
            opt_bounded_string(data, "cancelReason", 512)?;
            Body::RunCancelled
        }
        T::RunExpired => Body::RunExpired,
        T::AttrSet => {
            if !has_data {
                return Err(WfError::new(Code::AttributeInvalid, "eventData is required for attr_set"));
            }
            Body::AttrSet(attributes::parse_attr_set(data)?)
        }
        T::StepCreated => match data.get("stepName") {
            Some(Value::String(s)) => Body::StepCreated { step_name: s.clone(), input: data.get("input").cloned() },
            _ => return Err(bad("eventData.stepName is required and must be a string")),
        },
        T::StepStarted => {
            // Lazy iff stepName is a string and an `input` key exists (even null): events.md §6.10.
            let lazy = match (data.get("stepName"), data.get("input")) {
                (Some(Value::String(name)), Some(input)) => Some(LazyStep {
                    step_name: name.clone(),
                    input: input.clone(),
                    workflow_name: data.get("workflowName").cloned(),
                }),
                _ => None,
            };
            Body::StepStarted { lazy }
        }
        T::StepCompleted => Body::StepCompleted { result: data.get("result").cloned() },
        T::StepFailed => Body::StepFailed { error: data.get("error").cloned() },
        T::StepRetrying => Body::StepRetrying {
            error: data.get("error").cloned(),
            retry_after: match data.get("retryAfter") {
                None | Some(Value::Null) => None,
                Some(v) => Some(ts::parse_date("retryAfter", v)?),
            },
        },
        T::HookCreated => {
            let token = required_nonempty(data, "token")?;
            if token.chars().count() > 1024 {
                return Err(bad("token must be at most 1024 characters"));
            }
            check_indexed("token", &token)?;
            Body::HookCreated(NewHook {
                token,
                metadata: data.get("metadata").cloned(),
                is_webhook: opt_bool(data, "isWebhook")?.unwrap_or(false),
                is_system: opt_bool(data, "isSystem")?,
                owner_id: opt_string(data, "ownerId")?.unwrap_or_default(),
                project_id: opt_string(data, "projectId")?.unwrap_or_default(),
                environment: opt_string(data, "environment")?.unwrap_or_default(),
            })
        }
        T::HookReceived => Body::HookReceived,
        T::HookDisposed => Body::HookDisposed,
        T::WaitCreated => match data.get("resumeAt") {
            None | Some(Value::Null) => return Err(bad("eventData.resumeAt is required")),
            Some(v) => Body::WaitCreated { resume_at: ts::parse_date("resumeAt", v)? },
        },
        T::WaitCompleted => Body::WaitCompleted,
        T::HookConflict => {
            return Err(WfError::new(Code::EventNotCreatable, "event type hook_conflict cannot be created by clients"))
        }
    })
}

/// Page parameters shared by the list routes (http-api.md §1.8).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub limit: i64,
    pub cursor: Option<String>,
    pub descending: bool,
}

pub fn parse_page(query: &Value, default_limit: i64, max_limit: i64, default_desc: bool) -> WfResult<Page> {
    let limit = match query.get("limit") {
        None | Some(Value::Null) => default_limit,
        Some(v) => {
            let n = match v {
                Value::String(s) => s.trim().parse::<i64>().ok(),
                Value::Number(n) => n.as_i64(),
                _ => None,
            };
            match n {
                Some(n) if n >= 1 => n.min(max_limit),
                _ => return Err(bad("limit must be a positive integer")),
            }
        }
    };
    let descending = match query.get("sortOrder").and_then(Value::as_str) {
        None => default_desc,
        Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(bad("sortOrder must be asc or desc")),
    };
    if query.get("sortOrder").is_some_and(|v| !v.is_string() && !v.is_null()) {
        return Err(bad("sortOrder must be asc or desc"));
    }
    let cursor = match query.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("invalid cursor")),
    };
    Ok(Page { limit, cursor, descending })
}

/// A decimal cursor (steps, hooks, by-correlation).
pub fn decimal_cursor(cursor: &Option<String>) -> WfResult<Option<i64>> {
    match cursor {
        None => Ok(None),
        Some(s) if !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(Some).map_err(|_| bad("invalid cursor"))
        }
        Some(_) => Err(bad("invalid cursor")),
    }
}

/// A query parameter that must be a string when present.
pub fn query_str<'a>(query: &'a Value, field: &str) -> WfResult<Option<&'a str>> {
    match query.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad(format!("{field} must be a string"))),
    }
}

#[cfg(test)]
mod tests;
