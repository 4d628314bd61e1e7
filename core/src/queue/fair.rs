//! Which due messages a claim takes: fair between apps, then between the versions of an app,
//! each route's messages in due order (spec/queue.md §5). A claim offers how many due messages
//! each route has; `pick` answers with which to take.

/// One route (an app's deployment version) as a claim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub app: i32,
    /// How many due messages the claim locked for the route, oldest first.
    pub due: usize,
}

/// A taken message: the route, and its position among the route's due messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub route: usize,
    pub nth: usize,
}

/// Takes up to `limit` messages: one per app in turn (starting with the `start`-th app, so that
/// a small claim does not always favour the same one), and within an app one per version in
/// turn; each route's messages in due order, so what a route gives is a prefix of its offer.
pub fn pick(offers: &[Offer], limit: usize, start: usize) -> Vec<Pick> {
    let mut apps: Vec<(i32, Vec<usize>)> = Vec::new();
    for (i, o) in offers.iter().enumerate() {
        match apps.iter_mut().find(|(app, _)| *app == o.app) {
            Some((_, routes)) => routes.push(i),
            None => apps.push((o.app, vec![i])),
        }
    }
    let mut next = vec![0usize; offers.len()];
    let mut turn = vec![0usize; apps.len()];
    let mut out = Vec::new();
    let first = if apps.is_empty() { 0 } else { start % apps.len() };
    loop {
        let mut progressed = false;
        for k in 0..apps.len() {
            if out.len() >= limit {
                return out;
            }
            let a = (first + k) % apps.len();
            let routes = &apps[a].1;
            let Some(t) = (0..routes.len()).find(|t| {
                let r = routes[(turn[a] + t) % routes.len()];
                next[r] < offers[r].due
            }) else {
                continue;
            };
            let r = routes[(turn[a] + t) % routes.len()];
            out.push(Pick { route: r, nth: next[r] });
            next[r] += 1;
            turn[a] = (turn[a] + t + 1) % routes.len();
            progressed = true;
        }
        if !progressed {
            return out;
        }
    }
}

#[cfg(test)]
mod tests;
