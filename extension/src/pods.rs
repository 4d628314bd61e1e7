//! The per-pod limits' table (`pgworld_core::queue::pods`) in PostgreSQL's shared memory, under
//! one LWLock. It exists only when the library is in `shared_preload_libraries`; without that,
//! claims route as before and only each dispatcher's own concurrency bounds a pod.
//!
//! Slots are taken by the claim, inside its transaction, and given back if it aborts; a lease
//! that ends (a delivery's outcome, an expiry, a cancel) frees its slot when its transaction
//! commits, so an aborted outcome leaves the slot held with the lease.

use crate::db::{self, Row};
use crate::shmem::{database, Region};
use pgrx::spi::SpiClient;
use pgrx::{register_xact_callback, PgXactCallbackEvent, Uuid};
use pgworld_core::queue::pods::{self, Delivery, Full, PodKey, MAX_POD_CONCURRENCY};
use std::cell::RefCell;

/// 1024 pods of up to 256 deliveries each (about 6 MB), cluster-wide; 256 databases.
type Table = pods::PodTable<1024, { MAX_POD_CONCURRENCY as usize }, 256>;

/// How often a full pod's slots are checked against the leases, and how old a slot must be to
/// be checked (its claim has surely ended by then).
const CHECK_EVERY_MICROS: i64 = 1_000_000;
const SETTLED_AFTER_MICROS: i64 = 10_000_000;

/// The slots, when the library was preloaded.
pub static SLOTS: Region<Table> = Region::new(c"pgworld_pod_slots");

/// Whether per-pod limits are enforced in this server.
pub fn enforced() -> bool {
    SLOTS.exists()
}

fn locked<T>(f: impl FnOnce(&mut Table) -> T) -> Option<T> {
    SLOTS.locked(f)
}

fn key(app: i32, pod_id: &str) -> PodKey {
    PodKey { db: database(), app, pod: pods::pod_hash(pod_id) }
}

pub fn delivery(msg: i64, lease: &Uuid) -> Delivery {
    Delivery { msg, lease: pods::lease_tag(lease.as_bytes()) }
}

fn now_micros() -> i64 {
    crate::ffi::now_micros()
}

#[derive(Default)]
struct Pending {
    /// Slots this transaction took: given back if it aborts.
    taken: Vec<Delivery>,
    /// Leases this transaction ended (tags): their slots are freed when it commits.
    ended: Vec<u64>,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
    static REBUILT_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn pending(f: impl FnOnce(&mut Pending)) {
    let first = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let first = p.is_none();
        f(p.get_or_insert_with(Pending::default));
        first
    });
    if first {
        register_xact_callback(PgXactCallbackEvent::Commit, || {
            if let Some(p) = PENDING.with(|p| p.borrow_mut().take()) {
                release_all(&p.ended);
            }
        });
        register_xact_callback(PgXactCallbackEvent::Abort, || {
            if let Some(p) = PENDING.with(|p| p.borrow_mut().take()) {
                release_all(&p.taken.iter().map(|d| d.lease).collect::<Vec<_>>());
            }
        });
    }
}

fn release_all(leases: &[u64]) {
    if leases.is_empty() {
        return;
    }
    let mut sorted = leases.to_vec();
    sorted.sort_unstable();
    let db = database();
    locked(|t| t.release(db, &sorted));
}

/// The lease `lease` ends in this transaction (its slot is freed at commit). Naming a lease that
/// had already ended is harmless: its slot is gone.
pub fn lease_ended(lease: &Uuid) {
    if enforced() {
        pending(|p| p.ended.push(pods::lease_tag(lease.as_bytes())));
    }
}

/// One pod a claim may deliver to, and its limit (1 to `MAX_POD_CONCURRENCY`).
#[derive(Clone, Copy)]
pub struct Target {
    pub key: PodKey,
    pub max: u32,
}

impl Target {
    pub fn new(app: i32, pod_id: &str, max_concurrency: i32) -> Target {
        let max = u32::try_from(max_concurrency).unwrap_or(1).clamp(1, MAX_POD_CONCURRENCY);
        Target { key: key(app, pod_id), max }
    }
}

/// How many of each target's slots hold leases this transaction has ended: they are free to
/// it (and freed for everyone when it commits).
fn ended_here(t: &Table, targets: &[&Target]) -> Vec<u32> {
    let mut out = vec![0u32; targets.len()];
    PENDING.with(|p| {
        if let Some(p) = p.borrow().as_ref() {
            let db = database();
            for l in &p.ended {
                if let Some(owner) = t.owner(db, *l) {
                    if let Some(i) = targets.iter().position(|x| x.key == owner) {
                        out[i] += 1;
                    }
                }
            }
        }
    });
    out
}

/// What each of `targets` has in flight as this transaction sees it, and how many of those
/// slots it has ended itself.
fn held_here(t: &Table, targets: &[&Target]) -> (Vec<u32>, Vec<u32>) {
    let ended = ended_here(t, targets);
    (targets.iter().zip(&ended).map(|(p, e)| t.held(p.key).saturating_sub(*e)).collect(), ended)
}

/// What each of `targets` has in flight, as this transaction sees it.
pub fn held(targets: &[&Target]) -> Vec<u32> {
    locked(|t| held_here(t, targets).0).unwrap_or_else(|| vec![0; targets.len()])
}

/// A new lease id (random, version 4).
fn new_lease() -> Uuid {
    let mut b: [u8; 16] = crate::ffi::random_bytes("a lease id");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

/// Gives each wanted message (its route and id), in order, a lease and the pod of its route
/// with the most room, taking the pod's slot; None once the route's pods are full. Without
/// per-pod limits, a route's messages go to its pods in turn. `turn` varies which of equal
/// pods goes first from one claim to the next.
pub fn assign(targets: &[&[Target]], wanted: &[(usize, i64)], turn: usize) -> Vec<Option<(usize, Uuid)>> {
    let leases: Vec<Uuid> = wanted.iter().map(|_| new_lease()).collect();
    let now = now_micros();
    let placed = locked(|t| {
        // What each route's pods hold, read once: nobody else changes it while the lock is held.
        let mut held: Vec<Option<(Vec<u32>, Vec<u32>)>> = vec![None; targets.len()];
        let mut out = Vec::with_capacity(wanted.len());
        let mut took = Vec::new();
        for (k, ((route, id), lease)) in wanted.iter().zip(&leases).enumerate() {
            let pods = targets[*route];
            let (h, ended) = held[*route].get_or_insert_with(|| held_here(t, &pods.iter().collect::<Vec<_>>()));
            let limits: Vec<u32> = pods.iter().map(|p| p.max).collect();
            let Some(i) = pods::choose(&limits, h, turn.wrapping_add(k)) else {
                out.push(None);
                continue;
            };
            let d = delivery(*id, lease);
            // The slots of leases ended here are still in the table until commit.
            match t.take(pods[i].key, pods[i].max + ended[i], d, now) {
                Ok(()) => {
                    h[i] += 1;
                    took.push(d);
                    out.push(Some((i, *lease)));
                }
                // No entry left for this pod: it is bounded by the dispatchers only.
                Err(Full::Table) => out.push(Some((i, *lease))),
                Err(Full::Pod) => out.push(None),
            }
        }
        (out, took)
    });
    match placed {
        Some((out, took)) => {
            if !took.is_empty() {
                pending(|p| p.taken.extend(took));
            }
            out
        }
        None => wanted
            .iter()
            .zip(leases)
            .enumerate()
            .map(|(k, ((route, _), lease))| {
                let n = targets[*route].len();
                (n > 0).then(|| (turn.wrapping_add(k) % n, lease))
            })
            .collect(),
    }
}

/// Frees the slots of full pods whose leases have ended without their slot being freed (a
/// claim or an outcome whose backend died before its commit callbacks ran). At most once a
/// second per pod; reads only the messages named. True when it freed any.
pub fn confirm(c: &mut SpiClient<'_>, targets: &[&Target]) -> bool {
    let now = now_micros();
    let stale: Vec<Delivery> = locked(|t| {
        targets
            .iter()
            .flat_map(|p| t.unconfirmed(p.key, p.max, now - CHECK_EVERY_MICROS, now - SETTLED_AFTER_MICROS, now))
            .collect()
    })
    .unwrap_or_default();
    if stale.is_empty() {
        return false;
    }
    let ids: Vec<i64> = stale.iter().map(|d| d.msg).collect();
    let live: Vec<Delivery> =
        db::select(c, "SELECT id, lease_id FROM workflow.messages WHERE id = ANY($1) AND state = 'leased'", &[ids.into()])
            .filter_map(|r| r.opt_uuid(2).map(|l| delivery(r.bigint(1), &l)))
            .collect();
    let gone: Vec<u64> = stale.into_iter().filter(|d| !live.contains(d)).map(|d| d.lease).collect();
    release_all(&gone);
    !gone.is_empty()
}

/// Once per server start and database: takes the slots of the leases that were open when the
/// server started (their claims' slots were lost with the old shared memory).
pub fn rebuild(c: &mut SpiClient<'_>) {
    // A backend that saw its database rebuilt need not ask again: a server restart ends it too.
    if REBUILT_HERE.get() {
        return;
    }
    let db = database();
    if !locked(|t| t.needs_rebuild(db)).unwrap_or(false) {
        REBUILT_HERE.set(true);
        return;
    }
    let open: Vec<(Target, Delivery)> = db::select(
        c,
        "SELECT m.application_id, m.lease_pod, coalesce(h.max_concurrency, $1), m.id, m.lease_id \
         FROM workflow.messages m LEFT JOIN workflow.handlers h ON h.application_id = m.application_id AND h.pod_id = m.lease_pod \
         WHERE m.state = 'leased' AND m.lease_pod IS NOT NULL",
        &[(pods::DEFAULT_POD_CONCURRENCY as i32).into()],
    )
    .filter_map(|r| {
        let lease = r.opt_uuid(5)?;
        Some((Target::new(r.int(1), &r.text(2), r.int(3)), delivery(r.bigint(4), &lease)))
    })
    .collect();
    let now = now_micros();
    locked(|t| {
        if !t.needs_rebuild(db) {
            return;
        }
        for (target, d) in open {
            // A lease already in the table stays once (this can run again when more databases
            // than the table remembers were rebuilt). A lease that ended since the read leaves
            // its slot to `confirm`.
            if t.owner(db, d.lease).is_none() {
                let _ = t.take(target.key, target.max, d, now - SETTLED_AFTER_MICROS);
            }
        }
        t.mark_rebuilt(db);
    });
    REBUILT_HERE.set(true);
}
