//! Each app's active (pending or running) run count, for the `maxRuns` check, as the extension
//! keeps it in PostgreSQL's shared memory.
//!
//! A count in shared memory changes the moment a run is admitted, not when its transaction
//! commits, so concurrent creators need not queue on one counter row until commit to be exact:
//! an admission counts every run already admitted, committed or still in flight. The extension
//! gives a run's place back if its transaction (or savepoint) aborts, and takes a finished run's
//! place off when its transaction commits.
//!
//! Plain data: all zeroes is an empty table. Entries are never removed (an app is never
//! deleted), so lookups probe from the key's hash until they meet the key or a free entry.

/// One app of one database and its active runs.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// 0: free (no database has OID 0).
    db: u32,
    app: i32,
    active: i64,
}

/// Room for `N` apps across the server's databases.
#[repr(C)]
pub struct ActiveRuns<const N: usize> {
    entries: [Entry; N],
}

/// Where an app's count sits in the table (stable for the server's life).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place(usize);

impl<const N: usize> ActiveRuns<N> {
    fn start(db: u32, app: i32) -> usize {
        let h = (u64::from(db) << 32 | u64::from(app as u32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 32) as usize % N
    }

    /// The app's place, if it has one.
    pub fn find(&self, db: u32, app: i32) -> Option<Place> {
        let start = Self::start(db, app);
        for i in 0..N {
            let at = (start + i) % N;
            let e = &self.entries[at];
            if e.db == 0 {
                return None;
            }
            if e.db == db && e.app == app {
                return Some(Place(at));
            }
        }
        None
    }

    /// Gives the app a place holding `active` runs; an app that already has one keeps its
    /// count (another backend counted first). None when the table is full.
    pub fn insert(&mut self, db: u32, app: i32, active: i64) -> Option<Place> {
        assert!(db != 0, "database OID 0");
        let start = Self::start(db, app);
        for i in 0..N {
            let at = (start + i) % N;
            let e = &mut self.entries[at];
            if e.db == db && e.app == app {
                return Some(Place(at));
            }
            if e.db == 0 {
                *e = Entry { db, app, active };
                return Some(Place(at));
            }
        }
        None
    }

    /// Counts one more active run unless that would exceed `max_runs`.
    pub fn admit(&mut self, p: Place, max_runs: i64) -> bool {
        let e = &mut self.entries[p.0];
        if e.active >= max_runs {
            return false;
        }
        e.active += 1;
        true
    }

    /// Takes `n` runs off the count (their transaction committed their end, or aborted their
    /// admission).
    pub fn release(&mut self, p: Place, n: i64) {
        let e = &mut self.entries[p.0];
        e.active = (e.active - n).max(0);
    }

    pub fn active(&self, p: Place) -> i64 {
        self.entries[p.0].active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty<const N: usize>() -> Box<ActiveRuns<N>> {
        Box::new(ActiveRuns { entries: [Entry::default(); N] })
    }

    #[test]
    fn admission_stops_at_the_quota_and_a_release_makes_room() {
        let mut t = empty::<8>();
        let p = t.insert(5, 1, 1).expect("room");
        assert!(t.admit(p, 3));
        assert!(t.admit(p, 3));
        assert!(!t.admit(p, 3), "a fourth run under maxRuns 3");
        assert_eq!(t.active(p), 3);
        t.release(p, 1);
        assert!(t.admit(p, 3));
        // A lowered quota admits nothing until enough runs end.
        assert!(!t.admit(p, 1));
    }

    #[test]
    fn apps_and_databases_keep_separate_counts() {
        let mut t = empty::<8>();
        let a = t.insert(5, 1, 0).expect("room");
        let b = t.insert(5, 2, 7).expect("room");
        let c = t.insert(6, 1, 2).expect("room");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!((t.active(a), t.active(b), t.active(c)), (0, 7, 2));
        assert_eq!(t.find(5, 2), Some(b));
        assert_eq!(t.find(6, 1), Some(c));
        assert_eq!(t.find(7, 1), None);
    }

    #[test]
    fn a_second_count_of_the_same_app_keeps_the_first() {
        let mut t = empty::<8>();
        let p = t.insert(5, 1, 4).expect("room");
        assert!(t.admit(p, 10));
        assert_eq!(t.insert(5, 1, 4), Some(p));
        assert_eq!(t.active(p), 5);
    }

    #[test]
    fn a_full_table_finds_what_it_has_and_refuses_newcomers() {
        let mut t = empty::<4>();
        let places: Vec<Place> = (1..=4).map(|app| t.insert(9, app, i64::from(app)).expect("room")).collect();
        assert_eq!(t.insert(9, 5, 0), None);
        assert_eq!(t.find(9, 5), None);
        for (i, p) in places.iter().enumerate() {
            assert_eq!(t.find(9, i as i32 + 1), Some(*p));
            assert_eq!(t.active(*p), i as i64 + 1);
        }
    }

    #[test]
    fn releases_never_go_below_zero() {
        let mut t = empty::<2>();
        let p = t.insert(1, 1, 1).expect("room");
        t.release(p, 3);
        assert_eq!(t.active(p), 0);
    }
}
