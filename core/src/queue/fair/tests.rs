use super::*;

fn offer(app: i32, due: usize) -> Offer {
    Offer { app, due }
}

#[test]
fn a_backlog_does_not_starve_another_app() {
    // App 1 has a huge backlog, app 2 one message: app 2's is among the first taken.
    let offers = [offer(1, 100), offer(2, 1)];
    let picks = pick(&offers, 10, 0);
    assert_eq!(picks.len(), 10);
    assert_eq!(picks[1], Pick { route: 1, nth: 0 });
    // Starting with the other app puts it first.
    assert_eq!(pick(&offers, 1, 1), [Pick { route: 1, nth: 0 }]);
    // The backlog's messages go in due order.
    let nths: Vec<usize> = picks.iter().filter(|p| p.route == 0).map(|p| p.nth).collect();
    assert_eq!(nths, (0..9).collect::<Vec<_>>());
}

#[test]
fn apps_share_before_versions_do() {
    // App 1 has three versions, app 2 one: app 2 still gets every other message.
    let offers = [offer(1, 10), offer(1, 10), offer(1, 10), offer(2, 10)];
    let picks = pick(&offers, 8, 0);
    let app2 = picks.iter().filter(|p| p.route == 3).count();
    assert_eq!(app2, 4);
    // And app 1's share is spread over its versions in turn.
    let app1: Vec<usize> = picks.iter().filter(|p| p.route != 3).map(|p| p.route).collect();
    assert_eq!(app1, [0, 1, 2, 0]);
}

#[test]
fn an_empty_route_leaves_the_turn_to_the_others() {
    let picks = pick(&[offer(1, 0), offer(1, 2), offer(2, 3)], 10, 0);
    assert_eq!(picks.iter().map(|p| p.route).collect::<Vec<_>>(), [1, 2, 1, 2, 2]);
}

#[test]
fn limits_and_empty_offers() {
    assert!(pick(&[], 10, 3).is_empty());
    assert!(pick(&[offer(1, 5)], 0, 0).is_empty());
    assert_eq!(pick(&[offer(1, 5)], 100, 7).len(), 5);
}
