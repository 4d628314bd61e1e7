//! The apps' active-run counts (`pgworld_core::active_runs`) in shared memory, for `maxRuns`.
//!
//! An admission counts at once, before its transaction commits, so run creations of one app do
//! not queue behind each other's commits; a run's place is given back when its transaction or
//! savepoint aborts, and a finished run's place is freed when its transaction commits. An app's
//! count is read from `workflow.run_counters` on its first use after the server starts; the
//! counter rows stay exact in every mode, so a restart (or a server without the preloaded
//! library, which checks against the rows instead) starts from the truth.

use crate::db::{self, Row};
use crate::shmem::{database, Region};
use pgrx::pg_sys;
use pgrx::spi::SpiClient;
use pgworld_core::active_runs::{ActiveRuns, Place};
use std::cell::{Cell, RefCell};

/// 8,192 apps across the server's databases (128 KB). An app that finds the table full is
/// checked against its counter rows, serialized as without the preloaded library.
type Table = ActiveRuns<8192>;

pub static COUNTS: Region<Table> = Region::new(c"pgworld_active_runs");

/// A change to an app's count made in this transaction, and the (sub)transaction that made it.
#[derive(Clone, Copy)]
struct Change {
    place: Place,
    subxact: pg_sys::SubTransactionId,
}

#[derive(Default)]
struct Pending {
    /// Runs admitted: their places are given back if their (sub)transaction aborts.
    admitted: Vec<Change>,
    /// Runs that ended: their places are freed when the transaction commits.
    ended: Vec<Change>,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// The app's place in the table; None without the table or when it is full (then the counter
/// rows decide, serialized). Reads the app's count on its first use since the server started:
/// every change to the counter rows comes after this, so the sum is the committed truth.
pub fn place(c: &SpiClient<'_>, app: i32) -> Option<Place> {
    if !COUNTS.exists() {
        return None;
    }
    let db = database();
    if let Some(found) = COUNTS.locked(|t| t.find(db, app)).flatten() {
        return Some(found);
    }
    let active = db::select(
        c,
        "SELECT coalesce(sum(active), 0)::bigint FROM workflow.run_counters WHERE application_id = $1",
        &[app.into()],
    )
    .next()
    .map(|r| r.bigint(1))
    .unwrap_or_default();
    COUNTS.locked(|t| t.insert(db, app, active)).flatten()
}

/// Counts one more active run of the app at `place` unless that exceeds `max_runs`.
pub fn admit(place: Place, max_runs: i64) -> bool {
    let admitted = COUNTS.locked(|t| t.admit(place, max_runs)).unwrap_or(false);
    if admitted {
        record(|p| p.admitted.push(change(place)));
    }
    admitted
}

/// A run of the app at `place` ends in this transaction: its place is freed when it commits.
pub fn ended(place: Place) {
    record(|p| p.ended.push(change(place)));
}

fn change(place: Place) -> Change {
    // SAFETY: a plain read of the current transaction state.
    Change { place, subxact: unsafe { pg_sys::GetCurrentSubTransactionId() } }
}

fn record(f: impl FnOnce(&mut Pending)) {
    if !REGISTERED.replace(true) {
        // SAFETY: registers plain functions for the backend's life; no argument.
        unsafe {
            pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
            pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
        }
    }
    PENDING.with(|p| f(&mut p.borrow_mut()));
}

fn release(changes: &[Change]) {
    if !changes.is_empty() {
        COUNTS.locked(|t| changes.iter().for_each(|c| t.release(c.place, 1)));
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    let finished = |p: &mut Pending| std::mem::take(p);
    match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT => release(&PENDING.with(|p| finished(&mut p.borrow_mut())).ended),
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => release(&PENDING.with(|p| finished(&mut p.borrow_mut())).admitted),
        // A prepared transaction's admissions stay counted and its ends are not (this backend
        // will not see it finish): stricter, never looser, until the server restarts.
        XACT_EVENT_PREPARE => drop(PENDING.with(|p| finished(&mut p.borrow_mut()))),
        _ => {}
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    sub: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_ABORT_SUB => {
            let undone: Vec<Change> = PENDING.with(|p| {
                let mut p = p.borrow_mut();
                p.ended.retain(|c| c.subxact != sub);
                let (undone, kept) = p.admitted.iter().partition(|c| c.subxact == sub);
                p.admitted = kept;
                undone
            });
            release(&undone);
        }
        SUBXACT_EVENT_COMMIT_SUB => PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let Pending { admitted, ended } = &mut *p;
            admitted.iter_mut().chain(ended.iter_mut()).filter(|c| c.subxact == sub).for_each(|c| c.subxact = parent);
        }),
        _ => {}
    }
}
