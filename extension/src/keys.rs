//! Encryption keys and Kubernetes bindings: the per-app secrets behind
//! `workflow.encryption_key` (lifecycle.md §4) and the service accounts that may act for an app
//! (tenancy.md §6).

use crate::db::{self, Row};
use crate::tenancy::{self, app_not_found, lookup_label, require_admin, with_cross_app};
use base64::{engine::general_purpose::STANDARD, Engine};
use pgrx::Spi;
use pgworld_core::request::query_str;
use pgworld_core::{keys, WfError, WfResult};
use serde_json::{json, Value};

/// `workflow.encryption_key(query)`: `{"key": base64}` for `runId`, `{"key": null}` without a secret.
pub fn encryption_key(query: &Value) -> WfResult<Value> {
    let app = tenancy::current_app()?;
    let run_id = query_str(query, "runId")?.filter(|s| !s.is_empty()).ok_or_else(|| WfError::bad_request("runId is required"))?;
    Spi::connect(|c| Ok(json!({"key": app_secret(c, app).map(|s| STANDARD.encode(keys::run_key(&s, run_id)))})))
}

/// The app's encryption secret; None once it was removed.
pub fn app_secret(c: &pgrx::spi::SpiClient<'_>, app: i32) -> Option<Vec<u8>> {
    db::select(c, "SELECT secret FROM workflow.app_secrets WHERE application_id = $1", &[app.into()])
        .next()
        .and_then(|r| r.opt_bytes(1))
}

/// The id of the app labelled `label`, or WF404.
pub fn app_id(label: &str) -> WfResult<i32> {
    Spi::connect(|c| with_cross_app(|| lookup_label(c, label))).ok_or_else(|| app_not_found(label))
}

/// `workflow.app_secret_import(app_label, secret)` (admin): carries a secret over from another
/// deployment so its encrypted runs stay readable.
pub fn secret_import(label: &str, secret: &[u8]) -> WfResult<Value> {
    require_admin()?;
    if secret.len() != 32 {
        return Err(WfError::bad_request("the secret must be exactly 32 bytes"));
    }
    let app = app_id(label)?;
    with_cross_app(|| {
        Spi::connect_mut(|c| {
            db::update(
                c,
                "INSERT INTO workflow.app_secrets (application_id, secret) VALUES ($1, $2) \
                 ON CONFLICT (application_id) DO UPDATE SET secret = EXCLUDED.secret, created_at = now()",
                &[app.into(), secret.to_vec().into()],
            );
        })
    });
    Ok(json!({"appId": label, "imported": true}))
}

/// `workflow.app_secret_remove(app_label)` (admin): turns encryption off for new payloads.
pub fn secret_remove(label: &str) -> WfResult<Value> {
    require_admin()?;
    let app = app_id(label)?;
    let removed = with_cross_app(|| {
        Spi::connect_mut(|c| {
            db::update_any(c, "DELETE FROM workflow.app_secrets WHERE application_id = $1 RETURNING 1", &[app.into()])
        })
    });
    Ok(json!({"appId": label, "removed": removed}))
}

fn binding_fields(body: &Value) -> WfResult<(String, String)> {
    let field = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 253).map(str::to_owned);
    match (field("namespace"), field("serviceAccount")) {
        (Some(ns), Some(sa)) => Ok((ns, sa)),
        _ => Err(WfError::bad_request("namespace and serviceAccount are required")),
    }
}

/// `workflow.k8s_binding_add(body)` (admin), for the app of the transaction.
pub fn binding_add(body: &Value) -> WfResult<Value> {
    require_admin()?;
    let app = tenancy::current_app()?;
    let (ns, sa) = binding_fields(body)?;
    Spi::connect_mut(|c| {
        db::update(
            c,
            "INSERT INTO workflow.k8s_bindings (application_id, namespace, service_account) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[app.into(), ns.as_str().into(), sa.as_str().into()],
        );
        let label = db::select(c, "SELECT label FROM workflow.applications WHERE application_id = $1", &[app.into()])
            .next()
            .map(|r| r.text(1))
            .unwrap_or_default();
        Ok(json!({"appId": label, "namespace": ns, "serviceAccount": sa}))
    })
}

/// `workflow.k8s_binding_remove(body)` (admin).
pub fn binding_remove(body: &Value) -> WfResult<Value> {
    require_admin()?;
    let app = tenancy::current_app()?;
    let (ns, sa) = binding_fields(body)?;
    Spi::connect_mut(|c| {
        db::update(
            c,
            "DELETE FROM workflow.k8s_bindings WHERE application_id = $1 AND namespace = $2 AND service_account = $3",
            &[app.into(), ns.as_str().into(), sa.as_str().into()],
        );
        Ok(json!({"deleted": true}))
    })
}

/// `workflow.k8s_identity(namespace, service_account)` (service only): the labels of the apps the
/// identity is bound to, read on every request so a removed binding stops working at once.
pub fn identity_apps(ns: &str, sa: &str) -> Value {
    with_cross_app(|| {
        Spi::connect(|c| {
            let labels: Vec<Value> = db::select(
                c,
                "SELECT a.label FROM workflow.k8s_bindings b JOIN workflow.applications a USING (application_id) \
                 WHERE b.namespace = $1 AND b.service_account = $2 ORDER BY a.label",
                &[ns.into(), sa.into()],
            )
            .map(|r| Value::String(r.text(1)))
            .collect();
            Value::Array(labels)
        })
    })
}

/// `workflow.app_exists(label)` (service only).
pub fn label_exists(label: &str) -> bool {
    Spi::connect(|c| with_cross_app(|| lookup_label(c, label))).is_some()
}

#[pgrx::pg_extern(stable, parallel_safe, name = "_k8s_identity")]
fn k8s_identity(namespace: &str, service_account: &str) -> pgrx::JsonB {
    pgrx::JsonB(identity_apps(namespace, service_account))
}

#[pgrx::pg_extern(stable, parallel_safe, name = "_app_exists")]
fn app_exists(app_label: &str) -> bool {
    label_exists(app_label)
}
