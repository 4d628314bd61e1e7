//! Column lists and row → entity mapping, shared by the write path and the reads.

use crate::db::{OrInternal, Row};
use pgworld_core::model::*;
use serde_json::Value;

pub const RUN_COLS: &str = "run_id, status, deployment_id, workflow_name, spec_version, event_count, execution_context, \
     input, output, error, error_code, attributes, encryption_public_key, created_at, updated_at, started_at, completed_at, expired_at";
/// How many columns `RUN_COLS` has (extra columns of a query follow them).
pub const RUN_COL_COUNT: usize = 18;
/// The same columns without the payloads, for writes whose response does not carry the run.
pub const RUN_COLS_LIGHT: &str = "run_id, status, deployment_id, workflow_name, spec_version, event_count, execution_context, \
     NULL::jsonb, NULL::jsonb, NULL::jsonb, error_code, attributes, encryption_public_key, created_at, updated_at, started_at, completed_at, expired_at";
pub const STEP_COLS: &str = "run_id, step_id, step_name, status, attempt, spec_version, input, output, error, retry_after, \
     created_slot, created_at, updated_at, started_at, completed_at";
pub const HOOK_COLS: &str =
    "run_id, hook_id, token, status, owner_id, project_id, environment, metadata, is_webhook, is_system, \
     spec_version, created_at, received_at, disposed_at, hook_seq";
pub const WAIT_COLS: &str = "run_id, wait_id, status, resume_at, spec_version, created_at, updated_at, completed_at";
pub const EVENT_COLS: &str =
    "run_id, slot, seq, event_type, correlation_id, event_data, spec_version, created_at, resume_id, resume_digest";

fn status<T>(parsed: Option<T>, raw: &str) -> T {
    parsed.ok_or(raw).or_internal("unknown status in table")
}

pub fn run_from(r: &impl Row) -> Run {
    let st = r.text(2);
    Run {
        run_id: r.text(1),
        status: status(RunStatus::parse(&st), &st),
        deployment_id: r.text(3),
        workflow_name: r.text(4),
        spec_version: r.int(5),
        event_count: r.bigint(6),
        execution_context: r.json(7),
        input: r.json(8),
        output: r.json(9),
        error: r.json(10),
        error_code: r.opt_text(11),
        attributes: match r.json(12) {
            Some(Value::Object(m)) => m,
            _ => Default::default(),
        },
        encryption_public_key: r.opt_text(13),
        created_at: r.at(14),
        updated_at: r.at(15),
        started_at: r.ts(16),
        completed_at: r.ts(17),
        expired_at: r.ts(18),
    }
}

pub fn step_from(r: &impl Row) -> Step {
    let st = r.text(4);
    Step {
        run_id: r.text(1),
        step_id: r.text(2),
        step_name: r.text(3),
        status: status(StepStatus::parse(&st), &st),
        attempt: r.int(5),
        spec_version: r.int(6),
        input: r.json(7),
        output: r.json(8),
        error: r.json(9),
        retry_after: r.ts(10),
        created_slot: r.bigint(11),
        created_at: r.at(12),
        updated_at: r.at(13),
        started_at: r.ts(14),
        completed_at: r.ts(15),
    }
}

/// A hook and its creation sequence (the hooks-list cursor).
pub fn hook_from(r: &impl Row) -> (Hook, i64) {
    let st = r.text(4);
    let hook = Hook {
        run_id: r.text(1),
        hook_id: r.text(2),
        token: r.text(3),
        status: status(HookStatus::parse(&st), &st),
        owner_id: r.text(5),
        project_id: r.text(6),
        environment: r.text(7),
        metadata: r.json(8),
        is_webhook: r.flag(9),
        is_system: r.opt_bool(10),
        spec_version: r.int(11),
        created_at: r.at(12),
        received_at: r.ts(13),
        disposed_at: r.ts(14),
    };
    (hook, r.bigint(15))
}

pub fn wait_from(r: &impl Row) -> Wait {
    let st = r.text(3);
    Wait {
        run_id: r.text(1),
        wait_id: r.text(2),
        status: status(WaitStatus::parse(&st), &st),
        resume_at: r.ts(4),
        spec_version: r.int(5),
        created_at: r.at(6),
        updated_at: r.at(7),
        completed_at: r.ts(8),
    }
}

pub fn event_from(r: &impl Row) -> Event {
    Event {
        run_id: r.text(1),
        slot: r.bigint(2),
        seq: r.bigint(3),
        event_type: r.text(4),
        correlation_id: r.opt_text(5),
        event_data: match r.json(6) {
            Some(Value::Object(m)) => Some(m),
            _ => None,
        },
        spec_version: r.int(7),
        created_at: r.at(8),
        resume_id: r.opt_text(9),
        resume_digest: r.opt_text(10),
    }
}
