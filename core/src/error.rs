//! The typed error every rule returns. Its SQLSTATE is `WF` + the HTTP status (spec/errors.md);
//! the symbolic code travels as the HINT, the optional JSON `meta` as the DETAIL.

use serde_json::{json, Value};
use std::fmt;

/// Symbolic error codes of spec/errors.md §4 that the extension raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    SpecUnsupported,
    AttributeInvalid,
    EventNotCreatable,
    Unauthorized,
    Forbidden,
    AppNotFound,
    RunNotFound,
    StepNotFound,
    HookNotFound,
    WaitNotFound,
    EventNotFound,
    RunExists,
    RunTerminal,
    StepExists,
    StepTerminal,
    HookExists,
    HookDisposed,
    WaitExists,
    WaitCompleted,
    AttrDuplicate,
    ResumeConflict,
    RunExpired,
    VersionExpired,
    PayloadTooLarge,
    TooEarly,
    RunQuota,
    EventQuota,
    MessageNotFound,
    DuplicateIdempotencyKey,
    MessageNotRetryable,
    /// `versions/notify` trying to move an expired version back (409, same symbol as the 410).
    VersionStillExpired,
    QueueRate,
    StreamClosed,
    NoCompletedRun,
}

impl Code {
    pub fn status(self) -> u16 {
        use Code::*;
        match self {
            BadRequest | SpecUnsupported | AttributeInvalid | EventNotCreatable => 400,
            Unauthorized => 401,
            Forbidden => 403,
            AppNotFound | RunNotFound | StepNotFound | HookNotFound | WaitNotFound | EventNotFound | MessageNotFound
            | NoCompletedRun => 404,
            RunExists
            | RunTerminal
            | StepExists
            | StepTerminal
            | HookExists
            | HookDisposed
            | WaitExists
            | WaitCompleted
            | AttrDuplicate
            | ResumeConflict
            | DuplicateIdempotencyKey
            | MessageNotRetryable
            | VersionStillExpired
            | StreamClosed => 409,
            RunExpired | VersionExpired => 410,
            PayloadTooLarge => 413,
            TooEarly => 425,
            RunQuota | EventQuota | QueueRate => 429,
        }
    }

    pub fn symbol(self) -> &'static str {
        use Code::*;
        match self {
            BadRequest => "WF_BAD_REQUEST",
            SpecUnsupported => "WF_SPEC_UNSUPPORTED",
            AttributeInvalid => "WF_ATTRIBUTE_INVALID",
            EventNotCreatable => "WF_EVENT_NOT_CREATABLE",
            Unauthorized => "WF_UNAUTHORIZED",
            Forbidden => "WF_FORBIDDEN",
            AppNotFound => "WF_APP_NOT_FOUND",
            RunNotFound => "WF_RUN_NOT_FOUND",
            StepNotFound => "WF_STEP_NOT_FOUND",
            HookNotFound => "WF_HOOK_NOT_FOUND",
            WaitNotFound => "WF_WAIT_NOT_FOUND",
            EventNotFound => "WF_EVENT_NOT_FOUND",
            RunExists => "WF_RUN_EXISTS",
            RunTerminal => "WF_RUN_TERMINAL",
            StepExists => "WF_STEP_EXISTS",
            StepTerminal => "WF_STEP_TERMINAL",
            HookExists => "WF_HOOK_EXISTS",
            HookDisposed => "WF_HOOK_DISPOSED",
            WaitExists => "WF_WAIT_EXISTS",
            WaitCompleted => "WF_WAIT_COMPLETED",
            AttrDuplicate => "WF_ATTR_DUPLICATE",
            ResumeConflict => "WF_RESUME_CONFLICT",
            RunExpired => "WF_RUN_EXPIRED",
            VersionExpired | VersionStillExpired => "WF_VERSION_EXPIRED",
            PayloadTooLarge => "WF_PAYLOAD_TOO_LARGE",
            TooEarly => "WF_TOO_EARLY",
            RunQuota => "WF_RUN_QUOTA",
            EventQuota => "WF_EVENT_QUOTA",
            MessageNotFound => "WF_MESSAGE_NOT_FOUND",
            DuplicateIdempotencyKey => "WF_DUPLICATE_IDEMPOTENCY_KEY",
            MessageNotRetryable => "WF_MESSAGE_NOT_RETRYABLE",
            QueueRate => "WF_QUEUE_RATE",
            StreamClosed => "WF_STREAM_CLOSED",
            NoCompletedRun => "WF_NO_COMPLETED_RUN",
        }
    }
}

/// A client-caused failure: never used for internal faults (those stay ordinary errors → 5xx).
#[derive(Debug, Clone, PartialEq)]
pub struct WfError {
    pub code: Code,
    pub message: String,
    /// Becomes `meta` in the HTTP body (e.g. `{"retryAfter": …}` on 425).
    pub meta: Option<Value>,
}

pub type WfResult<T> = Result<T, WfError>;

impl WfError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        WfError { code, message: message.into(), meta: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }

    pub fn with_meta(mut self, meta: Value) -> Self {
        self.meta = Some(meta);
        self
    }

    pub fn sqlstate(&self) -> String {
        format!("WF{}", self.code.status())
    }

    /// The envelope the SQL wrappers turn into `RAISE … USING ERRCODE`.
    pub fn to_envelope(&self) -> Value {
        json!({ "$error": {
            "sqlstate": self.sqlstate(),
            "message": self.message,
            "hint": self.code.symbol(),
            "detail": self.meta.as_ref().map(Value::to_string),
        }})
    }
}

impl fmt::Display for WfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.sqlstate(), self.code.symbol(), self.message)
    }
}

impl std::error::Error for WfError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_is_wf_plus_http_status() {
        let e = WfError::new(Code::TooEarly, "Step s retryAfter not reached")
            .with_meta(json!({"retryAfter": "2026-01-01T00:00:00.000Z"}));
        assert_eq!(e.sqlstate(), "WF425");
        let env = e.to_envelope();
        assert_eq!(env["$error"]["hint"], "WF_TOO_EARLY");
        assert_eq!(env["$error"]["detail"], r#"{"retryAfter":"2026-01-01T00:00:00.000Z"}"#);
        assert_eq!(WfError::bad_request("x").to_envelope()["$error"]["detail"], Value::Null);
    }
}
