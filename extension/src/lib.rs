//! pgworld: durable-workflow state for the Workflow DevKit inside PostgreSQL 17.
//!
//! The rules live in `pgworld_core` (pure Rust). This crate reads state through SPI, applies the
//! rules' plans and exposes one SQL function per API route. Each `_name` function here returns
//! either its response or an error envelope; its public `workflow.name` wrapper (sql/api.sql)
//! raises the envelope as the `WFnnn` SQLSTATE, which pgrx cannot raise itself.

use pgrx::prelude::*;
use pgrx::JsonB;
use pgworld_core::{WfError, WfResult};
use serde_json::Value;

mod claim;
mod db;
mod dispatch;
mod entities;
mod events;
mod ffi;
mod guc;
mod keys;
mod maint;
mod pings;
mod queue;
mod quotas;
mod reads;
mod retention;
mod runs;
mod starts;
mod streams;
mod tenancy;
mod tokens;
mod versions;

::pgrx::pg_module_magic!();

extension_sql_file!("../../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../../sql/queue.sql", name = "queue", requires = ["schema"]);
extension_sql_file!("../../sql/operate.sql", name = "operate", requires = ["queue"]);
extension_sql_file!("../../sql/api.sql", name = "api", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::init();
}

/// The response, or `{"$error": …}` for the wrapper to raise.
pub(crate) fn respond(result: WfResult<Value>) -> JsonB {
    JsonB(result.unwrap_or_else(|e| e.to_envelope()))
}

/// JSON arguments arrive as text (the wrappers cast them) so that a document serde cannot take,
/// such as one nested deeper than 128 levels, is the caller's 400 rather than an internal error.
pub(crate) fn arg(what: &str, text: &str) -> WfResult<Value> {
    serde_json::from_str(text).map_err(|e| WfError::bad_request(format!("{what} is not acceptable JSON: {e}")))
}

#[pg_extern(volatile, parallel_unsafe, name = "_event_create")]
fn event_create(run_id: &str, query: &str, body: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| arg("body", body).and_then(|b| events::event_create(run_id, &q, &b))))
}

#[pg_extern(stable, parallel_safe, name = "_event_get")]
fn event_get(run_id: &str, event_id: &str, query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::event_get(run_id, event_id, &q)))
}

#[pg_extern(stable, parallel_safe, name = "_events_list")]
fn events_list(run_id: &str, query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::events_list(run_id, &q)))
}

#[pg_extern(stable, parallel_safe, name = "_events_by_correlation")]
fn events_by_correlation(query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::events_by_correlation(&q)))
}

#[pg_extern(stable, parallel_safe, name = "_run_get")]
fn run_get(run_id: &str, query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::run_get(run_id, &q)))
}

#[pg_extern(stable, parallel_safe, name = "_runs_list")]
fn runs_list(query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::runs_list(&q)))
}

#[pg_extern(stable, parallel_safe, name = "_step_get")]
fn step_get(run_id: &str, step_id: &str, query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::step_get(run_id, step_id, &q)))
}

#[pg_extern(stable, parallel_safe, name = "_steps_list")]
fn steps_list(run_id: &str, query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::steps_list(run_id, &q)))
}

#[pg_extern(stable, parallel_safe, name = "_hook_get")]
fn hook_get(hook_id: &str, query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::hook_get(hook_id, &q)))
}

#[pg_extern(stable, parallel_safe, name = "_hook_get_by_token")]
fn hook_get_by_token(token: &str, query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::hook_get_by_token(token, &q)))
}

#[pg_extern(stable, parallel_safe, name = "_hooks_list")]
fn hooks_list(query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| reads::hooks_list(&q)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_provision")]
fn app_provision(body: &str) -> JsonB {
    respond(arg("body", body).and_then(|b| tenancy::app_provision(&b)))
}

/// Creates an app without the admin check: only the install script calls it (for `default`).
#[pg_extern(volatile, parallel_unsafe, name = "_app_create")]
fn app_create(label: &str) -> JsonB {
    respond(Spi::connect_mut(|c| tenancy::app_create(c, label)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_role_grant")]
fn app_role_grant(app_label: &str, role: &str) -> JsonB {
    respond(tenancy::app_role_grant(app_label, role))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_role_revoke")]
fn app_role_revoke(role: &str) -> JsonB {
    respond(tenancy::app_role_revoke(role))
}

#[pg_extern(volatile, parallel_unsafe, name = "_start")]
fn start(workflow_name: Option<&str>, input: Option<&str>, options: Option<&str>) -> JsonB {
    respond(arg("input", input.unwrap_or("null")).and_then(|i| {
        arg("options", options.unwrap_or("{}")).and_then(|o| starts::start(workflow_name.unwrap_or_default(), &i, &o))
    }))
}

#[pg_extern(volatile, parallel_unsafe, name = "_hook_resume")]
fn hook_resume(token: Option<&str>, payload: Option<&str>) -> JsonB {
    respond(arg("payload", payload.unwrap_or("null")).and_then(|p| starts::hook_resume(token.unwrap_or_default(), &p)))
}

#[pg_extern(stable, parallel_safe, name = "_run_output")]
fn run_output(run_id: Option<&str>) -> JsonB {
    respond(starts::run_output(run_id.unwrap_or_default()))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_token_create")]
fn app_token_create(app_label: Option<&str>, body: Option<&str>) -> JsonB {
    respond(arg("body", body.unwrap_or("{}")).and_then(|b| tokens::app_token_create(app_label, &b)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_admin_token_create")]
fn admin_token_create(body: Option<&str>) -> JsonB {
    respond(arg("body", body.unwrap_or("{}")).and_then(|b| tokens::admin_token_create(&b)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_token_revoke")]
fn app_token_revoke(app_label: Option<&str>, token_id: Option<&str>) -> JsonB {
    respond(tokens::app_token_revoke(app_label, token_id.unwrap_or_default()))
}

#[pg_extern(stable, parallel_safe, name = "_app_tokens_list")]
fn app_tokens_list(app_label: Option<&str>) -> JsonB {
    respond(tokens::app_tokens_list(app_label))
}

#[pg_extern(stable, parallel_safe, name = "_token_identity")]
fn token_identity(token: &str) -> Option<JsonB> {
    tokens::token_identity(token).map(JsonB)
}

#[pg_extern(volatile, parallel_unsafe, name = "_queue_enqueue")]
fn queue_enqueue(query: &str, body: &str) -> JsonB {
    respond(arg("query", query).and_then(|_| queue::enqueue(arg("body", body).and_then(|b| pgworld_core::queue::parse_json(&b)))))
}

#[pg_extern(volatile, parallel_unsafe, name = "_queue_enqueue_cbor")]
fn queue_enqueue_cbor(query: &str, body: &[u8]) -> JsonB {
    respond(arg("query", query).and_then(|_| queue::enqueue(pgworld_core::queue::parse_cbor(body))))
}

#[pg_extern(stable, parallel_safe, name = "_dead_letters_list")]
fn dead_letters_list(query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| queue::dead_letters_list(&q)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_dead_letter_retry")]
fn dead_letter_retry(message_id: &str) -> JsonB {
    respond(queue::dead_letter_retry(message_id))
}

#[pg_extern(volatile, parallel_unsafe, name = "_handler_register")]
fn handler_register(body: &str) -> JsonB {
    respond(arg("body", body).and_then(|b| versions::handler_register(&b)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_handler_deregister")]
fn handler_deregister(pod_id: &str) -> JsonB {
    respond(versions::handler_deregister(pod_id))
}

#[pg_extern(stable, parallel_safe, name = "_version_status")]
fn version_status(deployment_id: &str) -> JsonB {
    respond(versions::version_status(deployment_id))
}

#[pg_extern(volatile, parallel_unsafe, name = "_version_expire")]
fn version_expire(deployment_id: &str) -> JsonB {
    respond(versions::version_expire(deployment_id))
}

#[pg_extern(volatile, parallel_unsafe, name = "_version_notify")]
fn version_notify(body: &str) -> JsonB {
    respond(arg("body", body).and_then(|b| versions::version_notify(&b)))
}

#[pg_extern(stable, parallel_safe, name = "_quotas_get")]
fn quotas_get() -> JsonB {
    respond(versions::quotas_get())
}

#[pg_extern(volatile, parallel_unsafe, name = "_quotas_put")]
fn quotas_put(body: &str) -> JsonB {
    respond(arg("body", body).and_then(|b| versions::quotas_put(&b)))
}

#[pg_extern(stable, parallel_safe, name = "_retention_get")]
fn retention_get() -> JsonB {
    respond(retention::retention_get())
}

#[pg_extern(volatile, parallel_unsafe, name = "_retention_put")]
fn retention_put(body: &str) -> JsonB {
    respond(arg("body", body).and_then(|b| retention::retention_put(&b)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_maint_run")]
fn maint_run() -> JsonB {
    JsonB(maint::maint_run())
}

#[pg_extern(stable, parallel_safe, name = "_metrics")]
fn metrics() -> JsonB {
    JsonB(maint::metrics())
}

#[pg_extern(volatile, parallel_unsafe, name = "_maint_reap_orphans")]
fn maint_reap_orphans(limit: i32) -> i64 {
    let limit = i64::from(limit.clamp(1, 10_000));
    tenancy::with_cross_app(|| Spi::connect_mut(|c| maint::reap_orphans(c, limit) as i64))
}

#[pg_extern(volatile, parallel_unsafe, name = "_run_cancel")]
fn run_cancel(run_id: &str, body: &str) -> JsonB {
    respond(arg("body", body).and_then(|b| runs::cancel(run_id, &b)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_run_wake_up")]
fn run_wake_up(run_id: &str, body: &str) -> JsonB {
    respond(arg("body", body).and_then(|_| runs::wake_up(run_id)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_run_replay")]
fn run_replay(run_id: &str, body: &str) -> JsonB {
    respond(arg("body", body).and_then(|b| runs::replay(run_id, &b)))
}

#[pg_extern(stable, parallel_safe, name = "_workflow_template")]
fn workflow_template(workflow_name: &str, query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| runs::template(workflow_name, &q)))
}

#[pg_extern(stable, parallel_safe, name = "_encryption_key")]
fn encryption_key(query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| keys::encryption_key(&q)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_secret_import")]
fn app_secret_import(app_label: &str, secret: &[u8]) -> JsonB {
    respond(keys::secret_import(app_label, secret))
}

#[pg_extern(volatile, parallel_unsafe, name = "_app_secret_remove")]
fn app_secret_remove(app_label: &str) -> JsonB {
    respond(keys::secret_remove(app_label))
}

#[pg_extern(volatile, parallel_unsafe, name = "_k8s_binding_add")]
fn k8s_binding_add(body: &str) -> JsonB {
    respond(arg("body", body).and_then(|b| keys::binding_add(&b)))
}

#[pg_extern(volatile, parallel_unsafe, name = "_k8s_binding_remove")]
fn k8s_binding_remove(body: &str) -> JsonB {
    respond(arg("body", body).and_then(|b| keys::binding_remove(&b)))
}

#[pg_extern(stable, parallel_safe, name = "_k8s_identity")]
fn k8s_identity(namespace: &str, service_account: &str) -> JsonB {
    JsonB(keys::identity_apps(namespace, service_account))
}

#[pg_extern(stable, parallel_safe, name = "_app_exists")]
fn app_exists(app_label: &str) -> bool {
    keys::app_exists(app_label)
}

#[pg_extern(volatile, parallel_unsafe, name = "_stream_put")]
fn stream_put(run_id: &str, name: &str, query: &str, body: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| arg("body", body).and_then(|b| streams::put_json(run_id, name, &q, &b))))
}

#[pg_extern(volatile, parallel_unsafe, name = "_stream_put_bytes")]
fn stream_put_bytes(run_id: &str, name: &str, query: &str, body: Vec<u8>) -> JsonB {
    respond(arg("query", query).and_then(|q| streams::put_bytes(run_id, name, &q, body)))
}

#[pg_extern(stable, parallel_safe, name = "_stream_state")]
fn stream_state(name: &str) -> JsonB {
    respond(streams::state(name))
}

/// Rows of a stream from an index; the public wrapper checks the app first.
#[pg_extern(stable, parallel_safe, name = "_stream_read")]
fn stream_read(name: &str, from_index: i64, max_chunks: i32) -> TableIterator<'static, (name!(idx, i64), name!(data, Vec<u8>))> {
    TableIterator::new(streams::read(name, from_index, max_chunks).unwrap_or_default())
}

#[pg_extern(stable, parallel_safe, name = "_streams_list")]
fn streams_list(run_id: &str) -> JsonB {
    respond(streams::list(run_id))
}

#[pg_extern(stable, parallel_safe, name = "_stream_info")]
fn stream_info(_run_id: &str, name: &str) -> JsonB {
    respond(streams::info(name))
}

#[pg_extern(stable, parallel_safe, name = "_stream_chunks")]
fn stream_chunks(_run_id: &str, name: &str, query: &str) -> JsonB {
    respond(arg("query", query).and_then(|q| streams::chunks(name, &q)))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
