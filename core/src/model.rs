//! The entities of a run's world as the rules see them. Payload fields hold the *stored* form
//! (see `payload`), so they pass between the database and the wire without re-encoding.

use crate::ts::Micros;
use serde_json::{Map, Value};

macro_rules! status_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? } terminal: [$($term:ident),*]) => {
        text_enum!($name { $($variant => $text),+ });

        impl $name {
            pub fn is_terminal(self) -> bool {
                matches!(self, $($name::$term)|*)
            }
        }
    };
}

status_enum!(RunStatus {
    Pending => "pending", Running => "running", Completed => "completed",
    Failed => "failed", Cancelled => "cancelled", Expired => "expired",
} terminal: [Completed, Failed, Cancelled, Expired]);

status_enum!(StepStatus {
    Pending => "pending", Running => "running", Completed => "completed",
    Failed => "failed", Cancelled => "cancelled",
} terminal: [Completed, Failed, Cancelled]);

status_enum!(HookStatus { Pending => "pending", Received => "received", Disposed => "disposed" } terminal: [Disposed]);

status_enum!(WaitStatus { Waiting => "waiting", Completed => "completed" } terminal: [Completed]);

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub run_id: String,
    pub status: RunStatus,
    pub deployment_id: String,
    pub workflow_name: String,
    pub spec_version: i32,
    pub event_count: i64,
    pub execution_context: Option<Value>,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub error_code: Option<String>,
    pub attributes: Map<String, Value>,
    pub encryption_public_key: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub started_at: Option<Micros>,
    pub completed_at: Option<Micros>,
    pub expired_at: Option<Micros>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub run_id: String,
    pub step_id: String,
    pub step_name: String,
    pub status: StepStatus,
    pub attempt: i32,
    pub spec_version: i32,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub retry_after: Option<Micros>,
    /// Slot of the event that created the step: the order steps are listed in.
    pub created_slot: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub started_at: Option<Micros>,
    pub completed_at: Option<Micros>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub run_id: String,
    pub hook_id: String,
    pub token: String,
    pub status: HookStatus,
    pub owner_id: String,
    pub project_id: String,
    pub environment: String,
    pub metadata: Option<Value>,
    pub is_webhook: bool,
    pub is_system: Option<bool>,
    pub spec_version: i32,
    pub created_at: Micros,
    pub received_at: Option<Micros>,
    pub disposed_at: Option<Micros>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    pub run_id: String,
    pub wait_id: String,
    pub status: WaitStatus,
    pub resume_at: Option<Micros>,
    pub spec_version: i32,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub completed_at: Option<Micros>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub run_id: String,
    pub slot: i64,
    /// App-wide sequence: the by-correlation cursor.
    pub seq: i64,
    pub event_type: String,
    pub correlation_id: Option<String>,
    pub event_data: Option<Map<String, Value>>,
    pub spec_version: i32,
    pub created_at: Micros,
    pub resume_id: Option<String>,
    pub resume_digest: Option<String>,
}
