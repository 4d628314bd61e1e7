//! The queue's rules (spec/queue.md): queue-name kinds, envelope validation for both encodings,
//! the retry schedule, delivery outcomes, failure details and the error a dead message leaves on
//! its run. The extension stores what these decide; the dispatcher classifies HTTP results here.

use crate::cbor;
use crate::error::{WfError, WfResult};
use crate::payload::Payload;
use serde_json::{json, Map, Value};

pub mod fair;
pub mod plan;
pub mod pods;
pub mod scan;

/// The 10th failed delivery makes a message dead (queue.md §8.2).
pub const MAX_ATTEMPTS: i32 = 10;
pub const MAX_QUEUE_NAME_CHARS: usize = 512;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 1024;
pub const MAX_DEPLOYMENT_ID_BYTES: usize = 2048;
/// Response bodies of 2xx and 425 are read up to this size (queue.md §7).
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

text_enum!(
    /// Which handler URL a message goes to (queue.md §2).
    QueueKind { Workflow => "workflow", Step => "step", Other => "other" }
);

text_enum!(
    MessageState {
        Pending => "pending", Deferred => "deferred", Leased => "leased", Retrying => "retrying",
        Delivered => "delivered", Dead => "dead",
    }
);

text_enum!(
    VersionStatus { Active => "active", Draining => "draining", Expired => "expired" }
);

/// A queue name's kind and namespace: `__wkf_workflow_<id>`, `__<ns>_wkf_step_<id>`, ….
pub fn classify(queue_name: &str) -> (QueueKind, Option<String>) {
    let Some(rest) = queue_name.strip_prefix("__") else {
        return (QueueKind::Other, None);
    };
    let (ns, rest) = match rest.strip_prefix("wkf_") {
        Some(r) => (None, r),
        None => match rest.split_once("_wkf_") {
            Some((ns, r)) if valid_namespace(ns) => (Some(ns.to_owned()), r),
            _ => return (QueueKind::Other, None),
        },
    };
    let kind = match rest {
        r if r.strip_prefix("workflow_").is_some_and(|id| !id.is_empty()) => QueueKind::Workflow,
        r if r.strip_prefix("step_").is_some_and(|id| !id.is_empty()) => QueueKind::Step,
        _ => return (QueueKind::Other, None),
    };
    (kind, ns)
}

fn valid_namespace(ns: &str) -> bool {
    let mut b = ns.bytes();
    b.next().is_some_and(|c| c.is_ascii_lowercase()) && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The workflow queue for a workflow name, in a namespace (queue.md §2.1).
pub fn workflow_queue(namespace: Option<&str>, workflow_name: &str) -> String {
    match namespace {
        Some(ns) => format!("__{ns}_wkf_workflow_{workflow_name}"),
        None => format!("__wkf_workflow_{workflow_name}"),
    }
}

/// Delay after the failure that brought `attempts` to its value: min(1000·2^attempts, 60000) ms.
pub fn backoff_ms(attempts: i32) -> i64 {
    if attempts >= 6 {
        60_000
    } else {
        (1000_i64 << attempts.max(0)).min(60_000)
    }
}

/// The message fields pgworld reads (queue.md §1, §9), whatever the encoding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFacts {
    pub run_id: String,
    pub step_id: Option<String>,
    pub health_check: bool,
}

impl MessageFacts {
    pub fn of(message: &Value) -> MessageFacts {
        let Value::Object(m) = message else {
            return MessageFacts::default();
        };
        let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        MessageFacts {
            run_id: text("runId").or_else(|| text("workflowRunId")).unwrap_or_default(),
            step_id: text("stepId"),
            health_check: m.get("__healthCheck") == Some(&Value::Bool(true)),
        }
    }
}

/// The message as stored: a JSON value, or the exact CBOR bytes of the `message` item.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(Value),
    Cbor(Vec<u8>),
}

/// A validated enqueue request (http-api.md §4.8).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub queue_name: String,
    pub body: Body,
    pub facts: MessageFacts,
    pub deployment_id: String,
    pub idempotency_key: Option<String>,
    pub delay_seconds: f64,
    pub headers: Map<String, Value>,
}

const REQUIRED: &str = "queueName and message are required";

/// Validates a JSON envelope.
pub fn parse_json(body: &Value) -> WfResult<Envelope> {
    let Value::Object(m) = body else {
        return Err(WfError::bad_request("request body must be a JSON object"));
    };
    let message = match m.get("message") {
        None | Some(Value::Null) => return Err(WfError::bad_request(REQUIRED)),
        Some(v) => v.clone(),
    };
    let fields = |k: &str| m.get(k).cloned();
    let facts = MessageFacts::of(&message);
    envelope(fields, Body::Json(message), facts)
}

/// Validates a CBOR envelope, keeping the `message` item's bytes.
pub fn parse_cbor(bytes: &[u8]) -> WfResult<Envelope> {
    let entries = cbor::map_entries(bytes).map_err(|e| WfError::bad_request(format!("invalid CBOR body: {}", e.0)))?;
    let item = |k: &str| entries.iter().rev().find(|(key, _)| key == k).map(|(_, r)| &bytes[r.clone()]);
    let message = match item("message") {
        Some(raw) if !cbor::is_null(raw) => raw.to_vec(),
        _ => return Err(WfError::bad_request(REQUIRED)),
    };
    // Only the small envelope fields and the message's facts go through the JSON model; the
    // message itself is kept as received.
    let message_json = cbor::to_json(&message).map_err(|e| WfError::bad_request(format!("invalid CBOR message: {}", e.0)))?;
    let facts = MessageFacts::of(&message_json);
    let fields = |k: &str| item(k).and_then(|raw| cbor::to_json(raw).ok());
    envelope(fields, Body::Cbor(message), facts)
}

fn envelope(field: impl Fn(&str) -> Option<Value>, body: Body, facts: MessageFacts) -> WfResult<Envelope> {
    let queue_name = match field("queueName") {
        None | Some(Value::Null) => return Err(WfError::bad_request(REQUIRED)),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_QUEUE_NAME_CHARS => s,
        Some(_) => {
            return Err(WfError::bad_request(format!("queueName must be a string of 1 to {MAX_QUEUE_NAME_CHARS} characters")))
        }
    };
    let deployment_id = match field("deploymentId") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.len() <= MAX_DEPLOYMENT_ID_BYTES => s,
        Some(_) => {
            return Err(WfError::bad_request(format!("deploymentId must be a string of at most {MAX_DEPLOYMENT_ID_BYTES} bytes")))
        }
    };
    let idempotency_key = match field("idempotencyKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_IDEMPOTENCY_KEY_CHARS => Some(s),
        Some(_) => {
            return Err(WfError::bad_request(format!(
                "idempotencyKey must be a string of 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"
            )))
        }
    };
    let delay_seconds = match field("delaySeconds") {
        None | Some(Value::Null) => 0.0,
        Some(Value::Number(n)) => match n.as_f64() {
            // Bounded so that now + delay stays a valid timestamp (about 31 years).
            Some(d) if d.is_finite() && (0.0..=1.0e9).contains(&d) => d,
            _ => return Err(WfError::bad_request("delaySeconds must be a finite number between 0 and 1e9")),
        },
        Some(_) => return Err(WfError::bad_request("delaySeconds must be a finite number between 0 and 1e9")),
    };
    let headers = match field("headers") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(h)) if h.iter().all(|(k, v)| valid_header_name(k) && v.as_str().is_some_and(valid_header_value)) => h,
        Some(_) => return Err(WfError::bad_request("headers must be an object of valid header names to string values")),
    };
    Ok(Envelope { queue_name, body, facts, deployment_id, idempotency_key, delay_seconds, headers })
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_header_value(v: &str) -> bool {
    v.len() <= 8192 && v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// Envelope headers never forwarded to a handler (queue.md §7).
pub fn forwardable_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !matches!(
        n.as_str(),
        "host"
            | "content-type"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
    ) && !n.starts_with("proxy-")
}

/// An absolute http(s) URL with a host, for handler endpoints.
pub fn valid_endpoint(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    url.len() <= 2048
        && !host.is_empty()
        && !host.starts_with(':')
        && !url.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// A URL fit for storage in a failure detail: userinfo, query and fragment removed, ≤ 1024 chars.
pub fn sanitize_url(url: &str) -> String {
    let no_fragment = url.split('#').next().unwrap_or_default();
    let no_query = no_fragment.split('?').next().unwrap_or_default();
    let cleaned = match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            let host = authority.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}{path}")
        }
        None => no_query.to_owned(),
    };
    truncate(&cleaned, 1024)
}

pub fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// What a delivery attempt came to, as the dispatcher reports it to `dispatch_complete`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// 2xx with `timeoutSeconds`: due again after this many seconds.
    RescheduleAfter(f64),
    /// 425: due again at `retryAfter` (epoch ms), at least 1 s from now.
    TooEarly(Option<f64>),
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub status_code: Option<u16>,
    pub url: Option<String>,
}

impl Failure {
    /// A failure pgworld decides itself (lease expiry, no route, an expired version, …): no HTTP
    /// status, no target URL.
    pub fn decided(code: &str, message: impl Into<String>) -> Failure {
        Failure { code: code.into(), message: message.into(), status_code: None, url: None }
    }
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Delivered => json!({"outcome": "delivered"}),
            Outcome::RescheduleAfter(s) => json!({"outcome": "reschedule", "delaySeconds": s}),
            Outcome::TooEarly(at) => json!({"outcome": "too_early", "retryAfterMs": at}),
            Outcome::Failed(f) => json!({
                "outcome": "failed", "code": f.code, "message": f.message, "statusCode": f.status_code, "url": f.url,
            }),
        }
    }

    pub fn from_json(v: &Value) -> WfResult<Outcome> {
        let bad = || WfError::bad_request("outcome must be {outcome: delivered|reschedule|too_early|failed, …}");
        let num = |k: &str| v.get(k).and_then(Value::as_f64).filter(|f| f.is_finite());
        match v.get("outcome").and_then(Value::as_str).ok_or_else(bad)? {
            "delivered" => Ok(Outcome::Delivered),
            "reschedule" => {
                Ok(Outcome::RescheduleAfter(num("delaySeconds").filter(|d| (0.0..=1.0e9).contains(d)).ok_or_else(bad)?))
            }
            "too_early" => Ok(Outcome::TooEarly(num("retryAfterMs"))),
            "failed" => Ok(Outcome::Failed(Failure {
                code: truncate(v.get("code").and_then(Value::as_str).unwrap_or("DISPATCH_ERROR"), 64),
                message: truncate(v.get("message").and_then(Value::as_str).unwrap_or_default(), 512),
                status_code: v.get("statusCode").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()),
                url: v.get("url").and_then(Value::as_str).map(sanitize_url),
            })),
            _ => Err(bad()),
        }
    }
}

/// Classifies a handler's HTTP answer (queue.md §8.1). `body` is what was read of it (2xx, 425).
pub fn classify_response(status: u16, body: &[u8], url: &str) -> Outcome {
    match status {
        200..=299 => {
            let timeout = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("timeoutSeconds").and_then(Value::as_f64))
                .filter(|t| t.is_finite() && (0.0..=1.0e9).contains(t));
            timeout.map_or(Outcome::Delivered, Outcome::RescheduleAfter)
        }
        425 => {
            let at = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.pointer("/meta/retryAfter").cloned())
                .and_then(|v| crate::ts::parse_date("retryAfter", &v).ok().map(|micros| micros as f64 / 1000.0));
            Outcome::TooEarly(at)
        }
        _ => Outcome::Failed(Failure {
            code: format!("HTTP_{status}"),
            message: format!("handler answered HTTP {status}"),
            status_code: Some(status),
            url: Some(sanitize_url(url)),
        }),
    }
}

/// Seconds until a 425's `retryAfter` (epoch ms): at least 1, whole seconds (queue.md §8.1).
pub fn too_early_delay_seconds(retry_after_ms: Option<f64>, now_ms: f64) -> f64 {
    match retry_after_ms {
        Some(at) => ((at - now_ms) / 1000.0).ceil().max(1.0),
        None => 1.0,
    }
}

/// `last_failure` as stored and listed (http-api.md §2.6).
pub fn failure_detail(f: &Failure, at_iso: &str, attempt: i32, queue_name: &str, version: &str) -> Value {
    let mut d = json!({
        "code": truncate(&f.code, 64),
        "message": truncate(&f.message, 512),
        "at": at_iso,
        "attempt": attempt,
        "target": {"queueName": truncate(queue_name, 256), "deploymentVersion": truncate(version, 256)},
    });
    if let Some(s) = f.status_code {
        d["statusCode"] = json!(s);
    }
    if let Some(u) = &f.url {
        d["target"]["url"] = json!(sanitize_url(u));
    }
    d
}

/// The error a dead message writes into its run or step (queue.md §9): devalue bytes for spec ≥ 4.
pub fn delivery_error(spec_version: i32, name: &str, message: &str, code: &str) -> Payload {
    if spec_version >= 4 {
        let text = json!([{"name": 1, "message": 2, "code": 3}, name, message, code]).to_string();
        let mut bytes = b"devl".to_vec();
        bytes.extend_from_slice(text.as_bytes());
        Payload::Bytes(bytes)
    } else {
        Payload::Json(json!({"name": name, "message": message, "code": code}))
    }
}

#[cfg(test)]
mod tests;
