//! Where a backend's claim scans start, so that they never walk the row versions the queue leaves
//! behind. Every claim and every outcome leaves a dead version of a message at the head of the
//! claim index; while any snapshot older than them is open (a REPEATABLE READ report, a psql
//! session left in a transaction), PostgreSQL can neither vacuum them nor mark them dead in the
//! index, and a scan from the start visits each one, so claims would slow down with every message
//! delivered. A floor remembers how far this backend's scans have already taken everything.
//!
//! Claim order is `(available_at, id)`. After a scan at snapshot S took the messages up to key K
//! in order, every message due at S with a key up to K is taken (or locked by another claimer).
//! A message can still turn up below K only if the transaction that made it due (enqueue, retry,
//! wake-up: the row's `ready_xid`) had not committed at S: it was running then or began later.
//! So a claim scans ahead of the floor, plus the due messages below it whose `ready_xid` is one
//! of those transactions. Messages whose row lock was skipped by a claimer that then rolled back
//! are the one case this misses; a full scan every [`RESCAN_MICROS`] finds them.
//!
//! Lease expiry works the same way on `lease_expires_at`: a lease is created or renewed as
//! `now() + lease`, after any floor an earlier scan could have reached unless its transaction ran
//! longer than the lease, and the periodic full scan covers that.

/// A position in claim order: `available_at` (PostgreSQL microseconds) and the message id.
pub type Key = (i64, i64);

/// Before every message.
pub const START: Key = (i64::MIN, i64::MIN);

/// How often a backend scans from the start regardless of its floor.
pub const RESCAN_MICROS: i64 = 30_000_000;

/// The transactions a snapshot did not see committed: running (`xip`) or not begun (`>= xmax`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unseen {
    pub xmax: i64,
    pub xip: Vec<i64>,
}

/// One route's floor in one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Floor {
    /// Due messages up to this key are taken, except those `late` made due.
    pub key: Key,
    /// The transactions whose messages may still appear at or below `key`.
    pub late: Unseen,
    /// When this floor's last scan from the start ran (PostgreSQL microseconds).
    pub rescanned_at: i64,
}

/// What one claim for a route should scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Everything due, from the start.
    Full,
    /// Ahead of the key, and the messages below it made due by these transactions.
    From(Key, Unseen),
}

/// What a claim scan for a route found and took.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// The greatest key taken from the scan ahead of the floor (or from the full scan).
    pub last_ahead: Option<Key>,
    /// Every late message the scan found was taken (the scan was not cut short by its limit).
    pub all_late_taken: bool,
}

/// The scan for a route: full without a floor or when the last full scan is too old.
pub fn plan(floor: Option<&Floor>, now: i64) -> Scan {
    match floor {
        Some(f) if now.saturating_sub(f.rescanned_at) < RESCAN_MICROS => Scan::From(f.key, f.late.clone()),
        _ => Scan::Full,
    }
}

/// The floor after a claim that ran `scan`; `unseen` was read from a snapshot taken before the
/// claim's scans (so it covers at least every transaction they did not see).
pub fn advance(floor: Option<&Floor>, scan: &Scan, unseen: Unseen, taken: &Taken, now: i64) -> Floor {
    match scan {
        Scan::Full => Floor { key: taken.last_ahead.unwrap_or(START), late: unseen, rescanned_at: now },
        Scan::From(key, late) => Floor {
            key: taken.last_ahead.map_or(*key, |k| k.max(*key)),
            // Late messages left behind keep the old set of transactions, a superset of the new one.
            late: if taken.all_late_taken { unseen } else { late.clone() },
            rescanned_at: floor.map_or(now, |f| f.rescanned_at),
        },
    }
}

/// The lease-expiry floor: expired leases with `lease_expires_at` below `at` are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryFloor {
    pub at: i64,
    pub rescanned_at: i64,
}

/// Where an expiry scan starts (inclusive): the start without a fresh floor.
pub fn expiry_from(floor: Option<ExpiryFloor>, now: i64) -> i64 {
    match floor {
        Some(f) if now.saturating_sub(f.rescanned_at) < RESCAN_MICROS => f.at,
        _ => i64::MIN,
    }
}

/// The expiry floor after a scan from `from` at `now` that handled leases up to `last` (in
/// expiry order); `cut_short` when it stopped at its limit.
pub fn expiry_advance(floor: Option<ExpiryFloor>, from: i64, last: Option<i64>, cut_short: bool, now: i64) -> ExpiryFloor {
    let rescanned_at = if from == i64::MIN { now } else { floor.map_or(now, |f| f.rescanned_at) };
    let at = if cut_short { last.unwrap_or(from) } else { now };
    ExpiryFloor { at: at.max(from), rescanned_at }
}

#[cfg(test)]
mod tests;
