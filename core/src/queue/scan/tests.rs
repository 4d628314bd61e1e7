use super::*;

fn unseen(xmax: i64, xip: &[i64]) -> Unseen {
    Unseen { xmax, xip: xip.to_vec() }
}

#[test]
fn a_backend_without_a_floor_scans_everything_and_keeps_what_it_took() {
    assert_eq!(plan(None, 10), Scan::Full);
    let taken = Taken { last_ahead: Some((5, 50)), all_late_taken: true };
    let f = advance(None, &Scan::Full, unseen(900, &[880]), &taken, 10);
    assert_eq!(f, Floor { key: (5, 50), late: unseen(900, &[880]), rescanned_at: 10 });
    assert_eq!(plan(Some(&f), 11), Scan::From((5, 50), unseen(900, &[880])));
}

#[test]
fn a_full_scan_that_took_nothing_starts_from_the_beginning_again() {
    let f = advance(None, &Scan::Full, unseen(7, &[]), &Taken::default(), 3);
    assert_eq!(f.key, START);
}

#[test]
fn the_floor_moves_only_forward_and_forgets_late_transactions_once_their_messages_are_taken() {
    let f = Floor { key: (5, 50), late: unseen(900, &[880]), rescanned_at: 0 };
    let scan = plan(Some(&f), 1);
    let next = advance(Some(&f), &scan, unseen(990, &[]), &Taken { last_ahead: Some((7, 70)), all_late_taken: true }, 1);
    assert_eq!(next, Floor { key: (7, 70), late: unseen(990, &[]), rescanned_at: 0 });
    // Nothing ahead taken: the key stays where it was.
    let still =
        advance(Some(&next), &plan(Some(&next), 2), unseen(995, &[]), &Taken { last_ahead: None, all_late_taken: true }, 2);
    assert_eq!(still.key, (7, 70));
}

#[test]
fn late_messages_left_behind_keep_the_older_wider_set_of_transactions() {
    let f = Floor { key: (5, 50), late: unseen(900, &[880]), rescanned_at: 0 };
    let next = advance(Some(&f), &plan(Some(&f), 1), unseen(990, &[]), &Taken { last_ahead: None, all_late_taken: false }, 1);
    assert_eq!(next.late, unseen(900, &[880]));
}

#[test]
fn an_old_floor_is_dropped_for_a_full_scan() {
    let f = Floor { key: (5, 50), late: unseen(900, &[]), rescanned_at: 100 };
    assert!(matches!(plan(Some(&f), 100 + RESCAN_MICROS - 1), Scan::From(..)));
    assert_eq!(plan(Some(&f), 100 + RESCAN_MICROS), Scan::Full);
    let again = advance(Some(&f), &Scan::Full, unseen(1000, &[]), &Taken::default(), 100 + RESCAN_MICROS);
    assert_eq!(again.rescanned_at, 100 + RESCAN_MICROS);
    assert_eq!(again.key, START);
}

#[test]
fn expiry_scans_resume_where_the_last_one_stopped() {
    assert_eq!(expiry_from(None, 5), i64::MIN);
    let f = expiry_advance(None, i64::MIN, Some(3), false, 5);
    assert_eq!(f, ExpiryFloor { at: 5, rescanned_at: 5 });
    assert_eq!(expiry_from(Some(f), 6), 5);
    // Cut short by the limit: resume at the last lease handled (inclusive, ties included).
    let cut = expiry_advance(Some(f), 5, Some(5), true, 8);
    assert_eq!(cut, ExpiryFloor { at: 5, rescanned_at: 5 });
    let on = expiry_advance(Some(cut), 5, None, false, 9);
    assert_eq!(on, ExpiryFloor { at: 9, rescanned_at: 5 });
    assert_eq!(expiry_from(Some(on), 5 + RESCAN_MICROS), i64::MIN);
}
