//! The only calls into PostgreSQL's C API that pgrx does not wrap safely. Each is a plain
//! read or a fill of a caller-owned buffer; pgrx's pg_sys bindings guard the FFI boundary, so an
//! ERROR raised inside becomes a Rust panic instead of a longjmp over Rust frames.

use pgrx::pg_sys;
use std::ffi::CStr;

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// The role that called us: SET ROLE's role, unaffected by SECURITY DEFINER switches.
pub fn calling_role() -> pg_sys::Oid {
    // SAFETY: reads a backend-global set at connection start; no arguments.
    unsafe { pg_sys::GetOuterUserId() }
}

pub fn role_oid(name: &CStr) -> Option<pg_sys::Oid> {
    // SAFETY: `name` is a valid NUL-terminated string; missing_ok = true returns InvalidOid.
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// True when `member` has the privileges of `role` (superusers have every role's).
pub fn has_privs_of_role(member: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    // SAFETY: both are plain Oids; the function only consults the role-membership cache.
    unsafe { pg_sys::has_privs_of_role(member, role) }
}

pub fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: noerr = true returns NULL for an unknown role instead of raising.
    let p = unsafe { pg_sys::GetUserNameFromId(role, true) };
    if p.is_null() {
        return format!("oid {}", role.to_u32());
    }
    // SAFETY: non-null result is a palloc'd NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// `N` bytes from the operating system's CSPRNG; an ERROR naming `what` they were for when
/// there is none.
pub fn random_bytes<const N: usize>(what: &str) -> [u8; N] {
    let mut buf = [0u8; N];
    // SAFETY: writes exactly N bytes into memory we own.
    if !unsafe { pg_sys::pg_strong_random(buf.as_mut_ptr().cast(), N) } {
        pgrx::error!("pgworld: no strong random source available for {what}");
    }
    buf
}

/// Wall-clock now, as Unix microseconds (the database clock that stamps rows).
pub fn now_micros() -> i64 {
    // SAFETY: no arguments; reads the system clock.
    let pg_now = unsafe { pg_sys::GetCurrentTimestamp() };
    pg_now + PG_EPOCH_OFFSET_MICROS
}

/// True when `xid` belongs to the running transaction or one of its live subtransactions.
pub fn is_current_transaction(xid: u32) -> bool {
    // SAFETY: a lookup in this backend's transaction state; any xid value is a valid argument.
    unsafe { pg_sys::TransactionIdIsCurrentTransactionId(pg_sys::TransactionId::from(xid)) }
}

/// This backend's local transaction id: changes with every transaction, so per-transaction
/// caches can key on it.
pub fn local_xid() -> u32 {
    // SAFETY: MyProc is set for every regular backend before any SQL function can run, and
    // only this backend writes its own vxid.
    unsafe { pg_sys::MyProc.as_ref().map_or(0, |p| p.vxid.lxid) }
}

/// Runs `f` with `role` as the current user, as SECURITY DEFINER does, and restores the
/// previous user afterwards, on unwinding too. (Transaction abort also restores it.)
pub fn as_role<R>(role: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores the exact pair read below.
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) }
        }
    }
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: both out-pointers are valid locals.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let _restore = Restore(user, context);
    // SAFETY: `role` is an existing role id; the flag forbids SET ROLE while it is in effect.
    unsafe { pg_sys::SetUserIdAndSecContext(role, context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32) };
    f()
}
