//! Per-app API tokens (tenancy outside Kubernetes): an admin creates them, the façade resolves a
//! presented token to its app (or to admin). Only SHA-256 of a token's secret is stored; the token
//! itself is in the create answer and nowhere else (pgworld_core::tokens).

use crate::db::{self, Row};
use crate::ffi;
use crate::keys::app_id;
use crate::tenancy::{require_admin, require_admin_role, with_cross_app};
use pgrx::Spi;
use pgworld_core::tokens::{self, SECRET_BYTES};
use pgworld_core::ts::to_iso as ts_iso;
use pgworld_core::{WfError, WfResult};
use serde_json::{json, Value};

fn label_of(body: &Value) -> WfResult<String> {
    match body.get("label") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) if s.chars().count() <= tokens::MAX_LABEL_CHARS => Ok(s.clone()),
        Some(_) => Err(WfError::bad_request(format!("label must be a string of at most {} characters", tokens::MAX_LABEL_CHARS))),
    }
}

/// Writes a token row for `app` (None: an admin token) and answers with the token, once.
fn create(app: Option<(i32, &str)>, body: &Value) -> WfResult<Value> {
    let label = label_of(body)?;
    let secret: [u8; SECRET_BYTES] = ffi::random_bytes("the token");
    let hash = tokens::hash(&secret).to_vec();
    let row = with_cross_app(|| {
        Spi::connect_mut(|c| {
            db::update(
                c,
                "INSERT INTO workflow.app_tokens (application_id, label, secret_hash) VALUES ($1, $2, $3) \
                 RETURNING token_id, created_at",
                &[app.map(|a| a.0).into(), label.as_str().into(), hash.into()],
            )
            .next()
            .map(|r| (r.bigint(1), r.ts(2)))
        })
    });
    let Some((id, created)) = row else {
        pgrx::error!("pgworld internal error: the token insert returned no row");
    };
    Ok(json!({
        "tokenId": tokens::public_id(id),
        "token": tokens::format(id, &secret),
        "appId": app.map(|a| a.1),
        "admin": app.is_none(),
        "label": label,
        "createdAt": created.map(ts_iso),
    }))
}

/// `workflow.app_token_create(app_label, body)` (admin): `{"label": …}` optional.
pub fn app_token_create(app_label: Option<&str>, body: &Value) -> WfResult<Value> {
    require_admin()?;
    let app_label = app_label.ok_or_else(|| WfError::bad_request("app_label is required"))?;
    let app = app_id(app_label)?;
    create(Some((app, app_label)), body)
}

/// `workflow.admin_token_create(body)`: for pgworld_admin only, never through the façade, so a
/// leaked app credential can never mint an admin.
pub fn admin_token_create(body: &Value) -> WfResult<Value> {
    require_admin_role()?;
    create(None, body)
}

/// `workflow.app_token_revoke(app_label, token_id)` (admin); a NULL app revokes any token.
pub fn app_token_revoke(app_label: Option<&str>, token_id: &str) -> WfResult<Value> {
    require_admin()?;
    let id = tokens::parse_public_id(token_id).ok_or_else(|| WfError::bad_request("tokenId is invalid"))?;
    let revoked = with_cross_app(|| {
        Spi::connect_mut(|c| {
            db::update_any(
                c,
                "UPDATE workflow.app_tokens t SET revoked_at = now() \
                 WHERE t.token_id = $1 AND t.revoked_at IS NULL \
                   AND ($2::text IS NULL OR t.application_id = (SELECT application_id FROM workflow.applications WHERE label = $2)) \
                 RETURNING 1",
                &[id.into(), app_label.into()],
            )
        })
    });
    Ok(json!({"tokenId": token_id, "revoked": revoked}))
}

/// `workflow.app_tokens_list(app_label)` (admin): every token of an app, or all with NULL;
/// never a secret or its hash.
pub fn app_tokens_list(app_label: Option<&str>) -> WfResult<Value> {
    require_admin()?;
    if let Some(label) = app_label {
        app_id(label)?;
    }
    let data: Vec<Value> = with_cross_app(|| {
        Spi::connect(|c| {
            db::select(
                c,
                "SELECT t.token_id, a.label, t.label, t.created_at, t.revoked_at FROM workflow.app_tokens t \
                 LEFT JOIN workflow.applications a USING (application_id) \
                 WHERE $1::text IS NULL OR a.label = $1 ORDER BY t.token_id",
                &[app_label.into()],
            )
            .map(|r| {
                let app = r.opt_text(2);
                json!({
                    "tokenId": tokens::public_id(r.bigint(1)),
                    "admin": app.is_none(),
                    "appId": app,
                    "label": r.text(3),
                    "createdAt": r.ts(4).map(ts_iso),
                    "revokedAt": r.ts(5).map(ts_iso),
                })
            })
            .collect()
        })
    });
    Ok(json!({"data": data}))
}

/// `workflow.token_identity(token)` (service only): `{"tokenId", "appId", "admin"}` for a live
/// token, NULL for anything else. The stored hash is compared in constant time.
pub fn identity_of(token: &str) -> Option<Value> {
    let (id, secret) = tokens::parse(token)?;
    let row = with_cross_app(|| {
        Spi::connect(|c| {
            db::select(
                c,
                "SELECT t.secret_hash, a.label FROM workflow.app_tokens t LEFT JOIN workflow.applications a USING (application_id) \
                 WHERE t.token_id = $1 AND t.revoked_at IS NULL",
                &[id.into()],
            )
            .next()
            .map(|r| (r.bytes(1), r.opt_text(2)))
        })
    })?;
    let (stored, app) = row;
    tokens::matches(&secret, &stored).then(|| json!({"tokenId": tokens::public_id(id), "admin": app.is_none(), "appId": app}))
}

/// `workflow.token_identity(token)` (service): who a token acts for, NULL when it is unknown.
#[pgrx::pg_extern(stable, parallel_safe, name = "_token_identity")]
fn token_identity(token: &str) -> Option<pgrx::JsonB> {
    identity_of(token).map(pgrx::JsonB)
}
