//! Generated from pgworld_core::api (core/src/api.rs) by its tests; do not edit. Each function
//! parses its jsonb arguments (text on the wire, see sql/functions.sql), calls its
//! implementation in `api.rs` and answers the result or an error envelope.

use crate::api;
use crate::reply::{answer, arg, respond};
use pgrx::prelude::*;
use pgrx::JsonB;

#[pg_extern(volatile, parallel_unsafe, name = "_app_provision")]
fn app_provision(body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::app_provision(&body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_role_grant")]
fn app_role_grant(app_label: &str, role_name: &str) -> JsonB {
    respond(api::app_role_grant(app_label, role_name))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_role_revoke")]
fn app_role_revoke(role_name: &str) -> JsonB {
    respond(api::app_role_revoke(role_name))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_token_create")]
fn app_token_create(app_label: Option<&str>, body: Option<&str>) -> JsonB {
    answer(|| {
        let body = arg("body", body.unwrap_or("{}"))?;
        api::app_token_create(app_label, &body)
    })
}

#[pg_extern(stable, parallel_safe, name = "_app_tokens_list")]
fn app_tokens_list(app_label: Option<&str>) -> JsonB {
    respond(api::app_tokens_list(app_label))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_token_revoke")]
fn app_token_revoke(app_label: Option<&str>, token_id: Option<&str>) -> JsonB {
    respond(api::app_token_revoke(app_label, token_id))
}

#[pg_extern(volatile, parallel_unsafe, name = "_admin_token_create")]
fn admin_token_create(body: Option<&str>) -> JsonB {
    answer(|| {
        let body = arg("body", body.unwrap_or("{}"))?;
        api::admin_token_create(&body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_k8s_binding_add")]
fn k8s_binding_add(body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::k8s_binding_add(&body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_k8s_binding_remove")]
fn k8s_binding_remove(body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::k8s_binding_remove(&body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_secret_import")]
fn app_secret_import(app_label: &str, secret: &[u8]) -> JsonB {
    respond(api::app_secret_import(app_label, secret))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_secret_remove")]
fn app_secret_remove(app_label: &str) -> JsonB {
    respond(api::app_secret_remove(app_label))
}

#[pg_extern(volatile, parallel_unsafe, name = "_event_create")]
fn event_create(run_id: &str, query: &str, body: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        let body = arg("body", body)?;
        api::event_create(run_id, &query, &body)
    })
}

#[pg_extern(stable, parallel_safe, name = "_events_list")]
fn events_list(run_id: &str, query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::events_list(run_id, &query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_event_get")]
fn event_get(run_id: &str, event_id: &str, query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::event_get(run_id, event_id, &query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_events_by_correlation")]
fn events_by_correlation(query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::events_by_correlation(&query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_run_get")]
fn run_get(run_id: &str, query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::run_get(run_id, &query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_runs_list")]
fn runs_list(query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::runs_list(&query)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_run_replay")]
fn run_replay(run_id: &str, body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::run_replay(run_id, &body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_run_cancel")]
fn run_cancel(run_id: &str, body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::run_cancel(run_id, &body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_run_wake_up")]
fn run_wake_up(run_id: &str, body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::run_wake_up(run_id, &body)
    })
}

#[pg_extern(stable, parallel_safe, name = "_workflow_template")]
fn workflow_template(workflow_name: &str, query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::workflow_template(workflow_name, &query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_step_get")]
fn step_get(run_id: &str, step_id: &str, query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::step_get(run_id, step_id, &query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_steps_list")]
fn steps_list(run_id: &str, query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::steps_list(run_id, &query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_hook_get_by_token")]
fn hook_get_by_token(token: &str, query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::hook_get_by_token(token, &query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_hook_get")]
fn hook_get(hook_id: &str, query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::hook_get(hook_id, &query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_hooks_list")]
fn hooks_list(query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::hooks_list(&query)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_start")]
fn start(workflow_name: Option<&str>, input: Option<&str>, options: Option<&str>) -> JsonB {
    answer(|| {
        let input = arg("input", input.unwrap_or("[]"))?;
        let options = arg("options", options.unwrap_or("{}"))?;
        api::start(workflow_name, &input, &options)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_hook_resume")]
fn hook_resume(token: Option<&str>, payload: Option<&str>) -> JsonB {
    answer(|| {
        let payload = arg("payload", payload.unwrap_or("null"))?;
        api::hook_resume(token, &payload)
    })
}

#[pg_extern(stable, parallel_safe, name = "_run_output")]
fn run_output(run_id: Option<&str>) -> JsonB {
    respond(api::run_output(run_id))
}

#[pg_extern(volatile, parallel_unsafe, name = "_stream_put")]
fn stream_put(run_id: &str, name: &str, query: &str, body: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        let body = arg("body", body)?;
        api::stream_put(run_id, name, &query, &body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_stream_put_bytes")]
fn stream_put_bytes(run_id: &str, name: &str, query: &str, body: &[u8]) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::stream_put_bytes(run_id, name, &query, body)
    })
}

#[pg_extern(stable, parallel_safe, name = "_stream_state")]
fn stream_state(name: &str) -> JsonB {
    respond(api::stream_state(name))
}

#[pg_extern(stable, parallel_safe, name = "_streams_list")]
fn streams_list(run_id: &str) -> JsonB {
    respond(api::streams_list(run_id))
}

#[pg_extern(stable, parallel_safe, name = "_stream_chunks")]
fn stream_chunks(run_id: &str, name: &str, query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::stream_chunks(run_id, name, &query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_stream_info")]
fn stream_info(run_id: &str, name: &str) -> JsonB {
    respond(api::stream_info(run_id, name))
}

#[pg_extern(volatile, parallel_unsafe, name = "_queue_enqueue")]
fn queue_enqueue(query: &str, body: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        let body = arg("body", body)?;
        api::queue_enqueue(&query, &body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_queue_enqueue_cbor")]
fn queue_enqueue_cbor(query: &str, body: &[u8]) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::queue_enqueue_cbor(&query, body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_handler_register")]
fn handler_register(body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::handler_register(&body)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_handler_deregister")]
fn handler_deregister(pod_id: &str) -> JsonB {
    respond(api::handler_deregister(pod_id))
}

#[pg_extern(stable, parallel_safe, name = "_encryption_key")]
fn encryption_key(query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::encryption_key(&query)
    })
}

#[pg_extern(stable, parallel_safe, name = "_dead_letters_list")]
fn dead_letters_list(query: &str) -> JsonB {
    answer(|| {
        let query = arg("query", query)?;
        api::dead_letters_list(&query)
    })
}

#[pg_extern(volatile, parallel_unsafe, name = "_dead_letter_retry")]
fn dead_letter_retry(message_id: &str) -> JsonB {
    respond(api::dead_letter_retry(message_id))
}

#[pg_extern(stable, parallel_safe, name = "_version_status")]
fn version_status(deployment_id: &str) -> JsonB {
    respond(api::version_status(deployment_id))
}

#[pg_extern(volatile, parallel_unsafe, name = "_version_expire")]
fn version_expire(deployment_id: &str) -> JsonB {
    respond(api::version_expire(deployment_id))
}

#[pg_extern(volatile, parallel_unsafe, name = "_version_notify")]
fn version_notify(body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::version_notify(&body)
    })
}

#[pg_extern(stable, parallel_safe, name = "_quotas_get")]
fn quotas_get() -> JsonB {
    respond(api::quotas_get())
}

#[pg_extern(volatile, parallel_unsafe, name = "_quotas_put")]
fn quotas_put(body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::quotas_put(&body)
    })
}

#[pg_extern(stable, parallel_safe, name = "_retention_get")]
fn retention_get() -> JsonB {
    respond(api::retention_get())
}

#[pg_extern(volatile, parallel_unsafe, name = "_retention_put")]
fn retention_put(body: &str) -> JsonB {
    answer(|| {
        let body = arg("body", body)?;
        api::retention_put(&body)
    })
}
