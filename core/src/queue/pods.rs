//! Per-pod delivery limits: which deliveries are in flight to each pod, so that a claim never
//! sends a pod more than its `maxConcurrency`, whichever dispatcher claims.
//!
//! The table lives in PostgreSQL's shared memory (the extension maps it), so every backend, and
//! so every dispatcher replica, sees the same one, and a claim reads and takes slots without
//! writing a row (a counter row updated per delivery would grow a chain of row versions that no
//! vacuum can remove while a long transaction is open). It is plain data: all zeroes is an empty
//! table, and nothing in it points anywhere.
//!
//! A slot names its delivery (message and lease), so releasing is idempotent and a slot whose
//! lease is gone can be found and freed ([`PodTable::unconfirmed`]): the table is a cache of the
//! leases in `workflow.messages`, checked against them when a pod looks full.

/// Concurrency a pod gets when its registration names none.
pub const DEFAULT_POD_CONCURRENCY: u32 = 32;
/// The most a registration may ask for (a pod's slots are preallocated).
pub const MAX_POD_CONCURRENCY: u32 = 256;

/// A registration's optional `maxConcurrency`: the most deliveries in flight to the pod.
pub fn max_concurrency_of(v: Option<&serde_json::Value>) -> crate::WfResult<i32> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(DEFAULT_POD_CONCURRENCY as i32),
        Some(v) => v.as_i64().filter(|n| (1..=i64::from(MAX_POD_CONCURRENCY)).contains(n)).map(|n| n as i32).ok_or_else(|| {
            crate::WfError::bad_request(format!("maxConcurrency must be an integer from 1 to {MAX_POD_CONCURRENCY}"))
        }),
    }
}

/// One pod of one app in one database.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PodKey {
    pub db: u32,
    pub app: i32,
    /// [`pod_hash`] of the pod's id.
    pub pod: u64,
}

/// A delivery in flight: the message and the first 8 bytes of its lease id.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    pub msg: i64,
    pub lease: u64,
}

/// A stable 64-bit hash of a pod id (FNV-1a): the same in every backend and every release.
pub fn pod_hash(pod_id: &str) -> u64 {
    pod_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The first 8 bytes of a lease id, as slots keep it.
pub fn lease_tag(lease: &[u8; 16]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&lease[..8]);
    u64::from_be_bytes(b)
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    delivery: Delivery,
    /// When it was taken (microseconds): a slot is only checked against the table once the
    /// claim that took it has surely committed or failed.
    taken_at: i64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Pod<const S: usize> {
    key: PodKey,
    /// The first `held` slots are in use; freeing moves the last one into the gap.
    held: u32,
    checked_at: i64,
    slots: [Slot; S],
}

/// `P` pods of up to `S` deliveries each, and the databases whose leases were read back in
/// since the server started (`R` of them).
#[repr(C)]
pub struct PodTable<const P: usize, const S: usize, const R: usize> {
    pods: [Pod<S>; P],
    rebuilt: [u32; R],
}

/// Why a slot could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The pod has `max` deliveries in flight.
    Pod,
    /// Every entry of the table holds another pod's deliveries.
    Table,
}

impl<const P: usize, const S: usize, const R: usize> PodTable<P, S, R> {
    /// An empty table on the heap (tests; the extension zeroes shared memory instead).
    pub fn boxed() -> Box<Self> {
        let empty = Pod {
            key: PodKey::default(),
            held: 0,
            checked_at: 0,
            slots: [Slot { delivery: Delivery::default(), taken_at: 0 }; S],
        };
        Box::new(Self { pods: [empty; P], rebuilt: [0; R] })
    }

    fn find(&self, key: PodKey) -> Option<usize> {
        self.pods.iter().position(|p| p.held > 0 && p.key == key)
    }

    /// Deliveries in flight to `key`.
    pub fn held(&self, key: PodKey) -> u32 {
        self.find(key).map_or(0, |i| self.pods[i].held)
    }

    /// Takes a slot of `key` for `d`, unless it has `max` in flight (capped at `S`).
    pub fn take(&mut self, key: PodKey, max: u32, d: Delivery, now: i64) -> Result<(), Full> {
        let max = max.min(S as u32);
        let i = match self.find(key) {
            Some(i) => i,
            None => {
                let free = self.pods.iter().position(|p| p.held == 0).ok_or(Full::Table)?;
                self.pods[free].key = key;
                self.pods[free].checked_at = now;
                free
            }
        };
        let pod = &mut self.pods[i];
        if pod.held >= max {
            return Err(Full::Pod);
        }
        pod.slots[pod.held as usize] = Slot { delivery: d, taken_at: now };
        pod.held += 1;
        Ok(())
    }

    /// Frees the slots of every lease in `leases` (sorted) in database `db`, wherever they are,
    /// in one pass over the table; how many it freed. (A lease tag is 64 random bits: it names
    /// one delivery.)
    pub fn release(&mut self, db: u32, leases: &[u64]) -> usize {
        let mut freed = 0;
        for pod in self.pods.iter_mut().filter(|p| p.held > 0 && p.key.db == db) {
            let mut j = 0;
            while j < pod.held as usize {
                if leases.binary_search(&pod.slots[j].delivery.lease).is_ok() {
                    pod.slots[j] = pod.slots[pod.held as usize - 1];
                    pod.held -= 1;
                    freed += 1;
                } else {
                    j += 1;
                }
            }
        }
        freed
    }

    /// The pod that holds the lease `lease` in database `db`.
    pub fn owner(&self, db: u32, lease: u64) -> Option<PodKey> {
        self.pods
            .iter()
            .find(|p| p.held > 0 && p.key.db == db && p.slots[..p.held as usize].iter().any(|s| s.delivery.lease == lease))
            .map(|p| p.key)
    }

    /// The deliveries of a full pod to check against the leases, when it was last checked
    /// before `checked_before` and they were taken before `taken_before`; marks it checked.
    pub fn unconfirmed(&mut self, key: PodKey, max: u32, checked_before: i64, taken_before: i64, now: i64) -> Vec<Delivery> {
        let Some(i) = self.find(key) else {
            return Vec::new();
        };
        let pod = &mut self.pods[i];
        if pod.held < max.min(S as u32) || pod.checked_at >= checked_before {
            return Vec::new();
        }
        pod.checked_at = now;
        pod.slots[..pod.held as usize].iter().filter(|s| s.taken_at < taken_before).map(|s| s.delivery).collect()
    }

    /// Whether database `db`'s leases still have to be read back in (once per server start).
    pub fn needs_rebuild(&self, db: u32) -> bool {
        !self.rebuilt.contains(&db)
    }

    /// Records that `db`'s leases were read back in; false when no room is left to say so.
    pub fn mark_rebuilt(&mut self, db: u32) -> bool {
        match self.rebuilt.iter().position(|&d| d == 0 || d == db) {
            Some(i) => {
                self.rebuilt[i] = db;
                true
            }
            None => false,
        }
    }
}

/// Which of `pods` (each with its limit) the next delivery goes to: the one with the most room,
/// the earliest after `start` among equals; None when all are full. `held` says what each has in
/// flight.
pub fn choose(limits: &[u32], held: &[u32], start: usize) -> Option<usize> {
    let n = limits.len();
    let mut best: Option<(usize, u32)> = None;
    for k in 0..n {
        let i = (start + k) % n;
        let room = limits[i].saturating_sub(held[i]);
        if room > 0 && best.is_none_or(|(_, r)| room > r) {
            best = Some((i, room));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Small = PodTable<3, 4, 2>;
    const A: PodKey = PodKey { db: 1, app: 1, pod: 11 };
    const B: PodKey = PodKey { db: 1, app: 1, pod: 22 };
    const C: PodKey = PodKey { db: 1, app: 2, pod: 33 };
    const D: PodKey = PodKey { db: 2, app: 1, pod: 11 };

    fn d(msg: i64) -> Delivery {
        Delivery { msg, lease: msg as u64 * 7 }
    }

    #[test]
    fn a_pod_takes_up_to_its_limit_and_frees_what_it_delivered() {
        let mut t = Small::boxed();
        assert_eq!(t.take(A, 2, d(1), 0), Ok(()));
        assert_eq!(t.take(A, 2, d(2), 0), Ok(()));
        assert_eq!(t.take(A, 2, d(3), 0), Err(Full::Pod));
        assert_eq!(t.held(A), 2);
        assert_eq!(t.release(1, &[d(1).lease]), 1);
        assert_eq!(t.release(1, &[d(1).lease]), 0, "releasing twice frees one slot");
        assert_eq!(t.take(A, 2, d(3), 0), Ok(()));
        assert_eq!(t.held(A), 2);
    }

    #[test]
    fn many_leases_are_freed_in_one_pass() {
        let mut t = Small::boxed();
        for m in 1..=3 {
            assert_eq!(t.take(A, 4, d(m), 0), Ok(()));
        }
        assert_eq!(t.take(B, 4, d(4), 0), Ok(()));
        assert_eq!(t.take(D, 4, d(5), 0), Ok(()));
        let mut leases = vec![d(3).lease, d(1).lease, d(4).lease, d(5).lease, 12345];
        leases.sort_unstable();
        assert_eq!(t.release(1, &leases), 3, "d(5) is in another database");
        assert_eq!((t.held(A), t.held(B), t.held(D)), (1, 0, 1));
        assert_eq!(t.owner(1, d(2).lease), Some(A));
    }

    #[test]
    fn limits_are_capped_by_the_slots_a_pod_has() {
        let mut t = Small::boxed();
        for m in 1..=4 {
            assert_eq!(t.take(A, 1000, d(m), 0), Ok(()));
        }
        assert_eq!(t.take(A, 1000, d(5), 0), Err(Full::Pod));
    }

    #[test]
    fn a_release_only_matches_its_lease_in_its_own_database() {
        let mut t = Small::boxed();
        assert_eq!(t.take(A, 4, d(1), 0), Ok(()));
        assert_eq!(t.take(D, 4, d(1), 0), Ok(()));
        assert_eq!(t.release(1, &[999]), 0, "another lease of the same message");
        assert_eq!(t.owner(2, d(1).lease), Some(D));
        assert_eq!(t.release(2, &[d(1).lease]), 1);
        assert_eq!((t.held(A), t.held(D)), (1, 0));
        assert_eq!(t.owner(2, d(1).lease), None);
    }

    #[test]
    fn entries_are_reused_once_empty_and_a_full_table_says_so() {
        let mut t = Small::boxed();
        assert_eq!(t.take(A, 4, d(1), 0), Ok(()));
        assert_eq!(t.take(B, 4, d(2), 0), Ok(()));
        assert_eq!(t.take(C, 4, d(3), 0), Ok(()));
        assert_eq!(t.take(D, 4, d(4), 0), Err(Full::Table));
        assert_eq!(t.release(1, &[d(2).lease]), 1);
        assert_eq!(t.take(D, 4, d(4), 0), Ok(()));
        assert_eq!(t.held(B), 0);
    }

    #[test]
    fn only_a_full_pod_is_checked_and_not_twice_in_a_row_nor_its_newest_slots() {
        let mut t = Small::boxed();
        assert_eq!(t.take(A, 2, d(1), 100), Ok(()));
        assert!(t.unconfirmed(A, 2, 1_000, 10_000, 1_000).is_empty(), "room left: nothing to check");
        assert_eq!(t.take(A, 2, d(2), 5_000), Ok(()));
        assert_eq!(t.unconfirmed(A, 2, 1_000, 2_000, 6_000), vec![d(1)], "the slot taken at 5000 may not have committed yet");
        assert!(t.unconfirmed(A, 2, 1_000, 10_000, 6_500).is_empty(), "checked at 6000");
        assert_eq!(t.unconfirmed(A, 2, 7_000, 10_000, 7_000), vec![d(1), d(2)]);
    }

    #[test]
    fn each_database_is_rebuilt_once() {
        let mut t = Small::boxed();
        assert!(t.needs_rebuild(5));
        assert!(t.mark_rebuilt(5));
        assert!(!t.needs_rebuild(5));
        assert!(t.mark_rebuilt(6));
        assert!(!t.mark_rebuilt(7), "no room to remember a third");
        assert!(t.needs_rebuild(7));
    }

    #[test]
    fn the_pod_with_most_room_goes_first_and_equals_take_turns() {
        assert_eq!(choose(&[2, 2], &[1, 0], 0), Some(1));
        assert_eq!(choose(&[2, 2], &[0, 0], 0), Some(0));
        assert_eq!(choose(&[2, 2], &[0, 0], 1), Some(1));
        assert_eq!(choose(&[2, 5], &[2, 5], 0), None);
        assert_eq!(choose(&[], &[], 3), None);
        assert_eq!(choose(&[10, 2], &[9, 0], 0), Some(1), "room, not the limit, decides");
    }

    #[test]
    fn a_registration_asks_for_1_to_256_or_gets_the_default() {
        use serde_json::json;
        assert_eq!(max_concurrency_of(None), Ok(32));
        assert_eq!(max_concurrency_of(Some(&json!(null))), Ok(32));
        assert_eq!(max_concurrency_of(Some(&json!(2))), Ok(2));
        assert_eq!(max_concurrency_of(Some(&json!(256))), Ok(256));
        for bad in [json!(0), json!(257), json!(2.5), json!("2"), json!(-1)] {
            assert!(max_concurrency_of(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn pod_hashes_are_stable() {
        assert_eq!(pod_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(pod_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(pod_hash("pod-1"), pod_hash("pod-2"));
    }
}
