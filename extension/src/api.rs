//! The implementation behind each generated `pg_extern` (externs.rs), one function per public
//! SQL function of pgworld_core::api, with the declaration's arguments: text as `&str`, jsonb
//! parsed into `&Value`, bytea as `&[u8]`, `Option` where the function takes NULLs. A declaration
//! and its implementation that disagree do not compile.

use crate::{keys, queue, reads, retention, runs, starts, streams, tenancy, tokens, versions};
use pgrx::Spi;
use pgworld_core::queue::{parse_cbor, parse_json};
use pgworld_core::WfResult;
use serde_json::Value;

type Answer = WfResult<Value>;

pub fn app_provision(body: &Value) -> Answer {
    tenancy::app_provision(body)
}
pub fn app_role_grant(app_label: &str, role_name: &str) -> Answer {
    tenancy::app_role_grant(app_label, role_name)
}
pub fn app_role_revoke(role_name: &str) -> Answer {
    tenancy::app_role_revoke(role_name)
}
pub fn app_token_create(app_label: Option<&str>, body: &Value) -> Answer {
    tokens::app_token_create(app_label, body)
}
pub fn app_tokens_list(app_label: Option<&str>) -> Answer {
    tokens::app_tokens_list(app_label)
}
pub fn app_token_revoke(app_label: Option<&str>, token_id: Option<&str>) -> Answer {
    tokens::app_token_revoke(app_label, token_id.unwrap_or_default())
}
pub fn admin_token_create(body: &Value) -> Answer {
    tokens::admin_token_create(body)
}
pub fn k8s_binding_add(body: &Value) -> Answer {
    keys::binding_add(body)
}
pub fn k8s_binding_remove(body: &Value) -> Answer {
    keys::binding_remove(body)
}
pub fn app_secret_import(app_label: &str, secret: &[u8]) -> Answer {
    keys::secret_import(app_label, secret)
}
pub fn app_secret_remove(app_label: &str) -> Answer {
    keys::secret_remove(app_label)
}

pub fn event_create(run_id: &str, query: &Value, body: &Value) -> Answer {
    crate::events::event_create(run_id, query, body)
}
pub fn events_list(run_id: &str, query: &Value) -> Answer {
    reads::events_list(run_id, query)
}
pub fn event_get(run_id: &str, event_id: &str, query: &Value) -> Answer {
    reads::event_get(run_id, event_id, query)
}
pub fn events_by_correlation(query: &Value) -> Answer {
    reads::events_by_correlation(query)
}
pub fn run_get(run_id: &str, query: &Value) -> Answer {
    reads::run_get(run_id, query)
}
pub fn runs_list(query: &Value) -> Answer {
    reads::runs_list(query)
}
pub fn run_replay(run_id: &str, body: &Value) -> Answer {
    runs::replay(run_id, body)
}
pub fn run_cancel(run_id: &str, body: &Value) -> Answer {
    runs::cancel(run_id, body)
}
/// The body is accepted for the route's shape; waking up takes no options.
pub fn run_wake_up(run_id: &str, _body: &Value) -> Answer {
    runs::wake_up(run_id)
}
pub fn workflow_template(workflow_name: &str, query: &Value) -> Answer {
    runs::template(workflow_name, query)
}
pub fn step_get(run_id: &str, step_id: &str, query: &Value) -> Answer {
    reads::step_get(run_id, step_id, query)
}
pub fn steps_list(run_id: &str, query: &Value) -> Answer {
    reads::steps_list(run_id, query)
}
pub fn hook_get_by_token(token: &str, query: &Value) -> Answer {
    reads::hook_get_by_token(token, query)
}
pub fn hook_get(hook_id: &str, query: &Value) -> Answer {
    reads::hook_get(hook_id, query)
}
pub fn hooks_list(query: &Value) -> Answer {
    reads::hooks_list(query)
}

pub fn start(workflow_name: Option<&str>, input: &Value, options: &Value) -> Answer {
    starts::start(workflow_name.unwrap_or_default(), input, options)
}
pub fn hook_resume(token: Option<&str>, payload: &Value) -> Answer {
    starts::hook_resume(token.unwrap_or_default(), payload)
}
pub fn run_output(run_id: Option<&str>) -> Answer {
    starts::run_output(run_id.unwrap_or_default())
}

pub fn stream_put(run_id: &str, name: &str, query: &Value, body: &Value) -> Answer {
    streams::put_json(run_id, name, query, body)
}
pub fn stream_put_bytes(run_id: &str, name: &str, query: &Value, body: &[u8]) -> Answer {
    streams::put_bytes(run_id, name, query, body)
}
pub fn stream_state(name: &str) -> Answer {
    streams::state(name)
}
pub fn streams_list(run_id: &str) -> Answer {
    streams::list(run_id)
}
/// Stream names are unique per app; the run id is part of the route only.
pub fn stream_chunks(_run_id: &str, name: &str, query: &Value) -> Answer {
    streams::chunks(name, query)
}
pub fn stream_info(_run_id: &str, name: &str) -> Answer {
    streams::info(name)
}

/// The query string carries nothing for an enqueue; it is parsed so that a bad one is refused.
pub fn queue_enqueue(_query: &Value, body: &Value) -> Answer {
    queue::enqueue(parse_json(body))
}
pub fn queue_enqueue_cbor(_query: &Value, body: &[u8]) -> Answer {
    queue::enqueue(parse_cbor(body))
}
pub fn handler_register(body: &Value) -> Answer {
    versions::handler_register(body)
}
pub fn handler_deregister(pod_id: &str) -> Answer {
    versions::handler_deregister(pod_id)
}
pub fn encryption_key(query: &Value) -> Answer {
    keys::encryption_key(query)
}
pub fn dead_letters_list(query: &Value) -> Answer {
    queue::dead_letters_list(query)
}
pub fn dead_letter_retry(message_id: &str) -> Answer {
    queue::dead_letter_retry(message_id)
}

pub fn version_status(deployment_id: &str) -> Answer {
    versions::version_status(deployment_id)
}
pub fn version_expire(deployment_id: &str) -> Answer {
    versions::version_expire(deployment_id)
}
pub fn version_notify(body: &Value) -> Answer {
    versions::version_notify(body)
}
pub fn quotas_get() -> Answer {
    versions::quotas_get()
}
pub fn quotas_put(body: &Value) -> Answer {
    versions::quotas_put(body)
}
pub fn retention_get() -> Answer {
    retention::retention_get()
}
pub fn retention_put(body: &Value) -> Answer {
    retention::retention_put(body)
}

/// Creates an app without the admin check: only the install script's callers use it (tests
/// provision `default` this way); not part of the public API.
pub fn app_create(label: &str) -> Answer {
    Spi::connect_mut(|c| tenancy::app_create(c, label))
}
