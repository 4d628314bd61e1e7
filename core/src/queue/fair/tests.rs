use super::*;

fn offer(app: i32, due: usize, free: &[usize]) -> Offer {
    Offer { app, due, free: free.to_vec() }
}

#[test]
fn a_backlog_does_not_starve_another_app() {
    // App 1 has a huge backlog, app 2 one message: app 2's is among the first taken.
    let offers = [offer(1, 100, &[200]), offer(2, 1, &[200])];
    let picks = pick(&offers, 10, 0);
    assert_eq!(picks.len(), 10);
    assert_eq!(picks[1], Pick { route: 1, nth: 0, pod: 0 });
    // Starting with the other app puts it first.
    assert_eq!(pick(&offers, 1, 1), [Pick { route: 1, nth: 0, pod: 0 }]);
    // The backlog's messages go in due order.
    let nths: Vec<usize> = picks.iter().filter(|p| p.route == 0).map(|p| p.nth).collect();
    assert_eq!(nths, (0..9).collect::<Vec<_>>());
}

#[test]
fn apps_share_before_versions_do() {
    // App 1 has three versions, app 2 one: app 2 still gets every other message.
    let offers = [offer(1, 10, &[50]), offer(1, 10, &[50]), offer(1, 10, &[50]), offer(2, 10, &[50])];
    let picks = pick(&offers, 8, 0);
    let app2 = picks.iter().filter(|p| p.route == 3).count();
    assert_eq!(app2, 4);
    // And app 1's share is spread over its versions in turn.
    let app1: Vec<usize> = picks.iter().filter(|p| p.route != 3).map(|p| p.route).collect();
    assert_eq!(app1, [0, 1, 2, 0]);
}

#[test]
fn a_full_pod_takes_nothing_and_others_go_first() {
    // Two pods of one version: 1 and 3 free slots; 10 due messages take 4, least busy first.
    let picks = pick(&[offer(1, 10, &[1, 3])], 10, 0);
    let pods: Vec<usize> = picks.iter().map(|p| p.pod).collect();
    assert_eq!(pods, [1, 1, 0, 1]);
    assert!(pick(&[offer(1, 10, &[0, 0])], 10, 0).is_empty());
    assert_eq!(capacity(&[1, 3]), 4);
    // A full route leaves the turn to the others.
    let picks = pick(&[offer(1, 10, &[0]), offer(2, 3, &[5])], 10, 0);
    assert_eq!(picks.iter().map(|p| p.route).collect::<Vec<_>>(), [1, 1, 1]);
}

#[test]
fn limits_and_empty_offers() {
    assert!(pick(&[], 10, 3).is_empty());
    assert!(pick(&[offer(1, 5, &[5])], 0, 0).is_empty());
    assert_eq!(pick(&[offer(1, 5, &[9])], 100, 7).len(), 5);
}
