//! Which app a call acts for (spec/tenancy.md §5), admin rights, apps and role mappings.

use crate::db::{self, OrInternal, Row};
use crate::{ffi, guc};
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgworld_core::{Code, WfError, WfResult};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

thread_local! {
    // Apps are never deleted or renamed, so label → id can be kept for the backend's life, once
    // the app's row is committed (see `find_label`).
    static APP_IDS: RefCell<HashMap<String, i32>> = RefCell::new(HashMap::new());
    // Set only while an admin or maintenance function works across apps; read by the RLS policies.
    // It is backend memory, not a setting, so no client can turn it on.
    static CROSS_APP: Cell<bool> = const { Cell::new(false) };
    // Set while pgworld itself acts for one app (a dead message failing its run, a version's
    // runs being cancelled): the app then comes from here, not from the caller.
    static ACTING_FOR: Cell<Option<i32>> = const { Cell::new(None) };
}

/// Runs `f` as app `app`, whoever the caller is; restored on return and on unwinding errors.
pub fn acting_for<R>(app: i32, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<i32>);
    impl Drop for Reset {
        fn drop(&mut self) {
            ACTING_FOR.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(ACTING_FOR.with(|c| c.replace(Some(app))));
    f()
}

/// Lets the enclosed work touch any app's rows; restored on return and on unwinding errors.
pub fn with_cross_app<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            CROSS_APP.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(CROSS_APP.with(|c| c.replace(true)));
    f()
}

#[pg_extern(stable, parallel_safe, name = "_cross_app")]
fn cross_app_enabled() -> bool {
    CROSS_APP.with(Cell::get)
}

fn role_has(name: &std::ffi::CStr) -> bool {
    ffi::role_oid(name).is_some_and(|r| ffi::has_privs_of_role(ffi::calling_role(), r))
}

pub fn app_not_found(label: &str) -> WfError {
    WfError::new(Code::AppNotFound, format!("Application {label} not found"))
}

/// One resolution per transaction, role and `workflow.app_id` value: the RLS policies ask for
/// the current app on every row they check.
struct Resolved {
    xid: u32,
    role: pg_sys::Oid,
    label: Option<String>,
    app: i32,
}

thread_local! {
    static RESOLVED: RefCell<Option<Resolved>> = const { RefCell::new(None) };
}

/// Resolves the current app: trusted service callers name it in `workflow.app_id`; other roles
/// are bound to one app by `workflow.app_role_grant`.
pub fn current_app() -> WfResult<i32> {
    if let Some(app) = ACTING_FOR.with(Cell::get) {
        return Ok(app);
    }
    let (xid, role, label) = (ffi::local_xid(), ffi::calling_role(), guc::app_label());
    let hit =
        RESOLVED.with(|r| r.borrow().as_ref().filter(|e| e.xid == xid && e.role == role && e.label == label).map(|e| e.app));
    if let Some(app) = hit {
        return Ok(app);
    }
    let (app, settled) = resolve(role, label.as_deref())?;
    if settled {
        RESOLVED.with(|r| *r.borrow_mut() = Some(Resolved { xid, role, label, app }));
    }
    Ok(app)
}

/// True unless the row with this `xmin` was written by the running transaction or one of its
/// subtransactions: such a row (an app provisioned, a role granted) can still roll back, and an
/// id cached from it would let later calls write under an app that does not exist.
fn settled(xmin: &str) -> bool {
    !xmin.parse::<u32>().is_ok_and(ffi::is_current_transaction)
}

/// The lookups read the role map as the tables' owner, whoever calls (a policy runs as the
/// reading role). Operators are schema-qualified so the caller's search_path cannot redirect them.
/// Returns the app and whether that answer may be cached.
fn resolve(role: pg_sys::Oid, label: Option<&str>) -> WfResult<(i32, bool)> {
    let owner = ffi::role_oid(c"pgworld_owner").ok_or_else(|| WfError::new(Code::Unauthorized, "pgworld roles are missing"))?;
    if role_has(c"pgworld_service") {
        let label = label.ok_or_else(|| WfError::new(Code::Unauthorized, "workflow.app_id is not set for this transaction"))?;
        return ffi::as_role(owner, || Spi::connect(|c| find_label(c, label))).ok_or_else(|| app_not_found(label));
    }
    let mapped = ffi::as_role(owner, || {
        Spi::connect(|c| {
            db::select(
                c,
                "SELECT m.application_id, a.label, m.xmin::text, a.xmin::text FROM workflow.app_roles m \
                 JOIN workflow.applications a ON a.application_id OPERATOR(pg_catalog.=) m.application_id \
                 WHERE m.role_oid OPERATOR(pg_catalog.=) $1",
                &[role.into()],
            )
            .next()
            .map(|r| (r.int(1), r.text(2), settled(&r.text(3)) && settled(&r.text(4))))
        })
    });
    match mapped {
        Some((id, mapped_label, settled)) => match label {
            Some(l) if l != mapped_label => Err(WfError::new(Code::Forbidden, "Forbidden: app ID mismatch")),
            _ => Ok((id, settled)),
        },
        None => Err(WfError::new(Code::Unauthorized, format!("role {} is not mapped to an application", ffi::role_name(role)))),
    }
}

/// The app id for `label`, and whether it is committed (and so cached).
fn find_label(c: &SpiClient<'_>, label: &str) -> Option<(i32, bool)> {
    if let Some(id) = APP_IDS.with(|m| m.borrow().get(label).copied()) {
        return Some((id, true));
    }
    let (id, settled) = db::select(
        c,
        "SELECT application_id, xmin::text FROM workflow.applications WHERE label OPERATOR(pg_catalog.=) $1",
        &[label.into()],
    )
    .next()
    .map(|r| (r.int(1), settled(&r.text(2))))?;
    if settled {
        APP_IDS.with(|m| m.borrow_mut().insert(label.to_owned(), id));
    }
    Some((id, settled))
}

pub fn lookup_label(c: &SpiClient<'_>, label: &str) -> Option<i32> {
    find_label(c, label).map(|(id, _)| id)
}

pub fn require_admin() -> WfResult<()> {
    let admin = role_has(c"pgworld_admin") || (role_has(c"pgworld_service") && guc::ADMIN.get());
    if admin {
        Ok(())
    } else {
        Err(WfError::new(Code::Forbidden, "Forbidden: admin access required"))
    }
}

/// Members of pgworld_admin (and superusers) only: the service's admin switch does not count.
pub fn require_admin_role() -> WfResult<()> {
    if role_has(c"pgworld_admin") {
        Ok(())
    } else {
        Err(WfError::new(Code::Forbidden, "Forbidden: only a member of pgworld_admin may do this"))
    }
}

/// The app id for row-level security: NULL (no rows) when the caller has none.
#[pg_extern(stable, parallel_safe, name = "current_app_id")]
fn current_app_id_sql() -> Option<i32> {
    current_app().ok()
}

fn valid_label(label: &str) -> bool {
    (1..=128).contains(&label.len()) && label.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~@-".contains(&b))
}

/// Creates an app with its encryption secret and quota counters; `created` is false if it existed.
pub fn app_create(c: &mut SpiClient<'_>, label: &str) -> WfResult<Value> {
    if !valid_label(label) {
        return Err(WfError::bad_request("appId is invalid"));
    }
    let inserted = db::update(
        c,
        "INSERT INTO workflow.applications (label) VALUES ($1) ON CONFLICT (label) DO NOTHING RETURNING application_id",
        &[label.into()],
    )
    .next()
    .map(|r| r.int(1));
    let Some(app) = inserted else {
        return Ok(json!({"appId": label, "created": false}));
    };
    let secret = ffi::random_bytes::<32>("the app secret").to_vec();
    with_cross_app(|| {
        db::update(c, "INSERT INTO workflow.app_secrets (application_id, secret) VALUES ($1, $2)", &[app.into(), secret.into()]);
        db::update(
            c,
            "INSERT INTO workflow.run_counters (application_id, shard) SELECT $1, s FROM generate_series(0, 8) AS s",
            &[app.into()],
        );
    });
    Ok(json!({"appId": label, "created": true}))
}

/// `workflow.app_provision(body)`: `{"appId": label}` (admin).
pub fn app_provision(body: &Value) -> WfResult<Value> {
    require_admin()?;
    let label = match body.get("appId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => return Err(WfError::bad_request("appId is required")),
        Some(_) => return Err(WfError::bad_request("appId is invalid")),
    };
    Spi::connect_mut(|c| app_create(c, &label))
}

/// Binds a login role to an app for direct SQL access (admin).
pub fn app_role_grant(app_label: &str, role: &str) -> WfResult<Value> {
    require_admin()?;
    Spi::connect_mut(|c| {
        let app = lookup_label(c, app_label).ok_or_else(|| app_not_found(app_label))?;
        let role_c = std::ffi::CString::new(role).map_err(|_| WfError::bad_request("role name is invalid"))?;
        let oid = ffi::role_oid(&role_c).ok_or_else(|| WfError::bad_request(format!("role {role} does not exist")))?;
        let client = ffi::role_oid(c"pgworld_client").ok_or("missing").or_internal("role pgworld_client");
        if !ffi::has_privs_of_role(oid, client) {
            return Err(WfError::bad_request(format!("role {role} must be a member of pgworld_client")));
        }
        db::update(
            c,
            "INSERT INTO workflow.app_roles (role_oid, application_id) VALUES ($1, $2) \
             ON CONFLICT (role_oid) DO UPDATE SET application_id = EXCLUDED.application_id, granted_at = now()",
            &[DatumWithOid::from(oid), app.into()],
        );
        Ok(json!({"appId": app_label, "role": role, "granted": true}))
    })
}

pub fn app_role_revoke(role: &str) -> WfResult<Value> {
    require_admin()?;
    Spi::connect_mut(|c| {
        let role_c = std::ffi::CString::new(role).map_err(|_| WfError::bad_request("role name is invalid"))?;
        let revoked = match ffi::role_oid(&role_c) {
            Some(oid) => db::update_any(c, "DELETE FROM workflow.app_roles WHERE role_oid = $1 RETURNING 1", &[oid.into()]),
            None => false,
        };
        Ok(json!({"role": role, "revoked": revoked}))
    })
}
