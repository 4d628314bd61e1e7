//! Which due messages a claim takes: fair between apps, then between the versions of an app,
//! each route's messages in due order (spec/queue.md §5). A claim offers each route's due
//! messages and the room of each of its pods; `pick` answers with the messages and their pods.
//! Today the claim offers one pod per route with room for the whole claim (pods have no limits
//! of their own yet); the rule already keeps to per-pod room, which its tests cover.

/// One route (an app's deployment version) as a claim sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub app: i32,
    /// How many due messages the claim locked for the route, oldest first.
    pub due: usize,
    /// Free slots of each of the route's pods: its limit less its open deliveries.
    pub free: Vec<usize>,
}

/// A taken message: the route, its position among the route's due messages, the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub route: usize,
    pub nth: usize,
    pub pod: usize,
}

/// How many messages a route could take at most: the free slots of its pods.
pub fn capacity(free: &[usize]) -> usize {
    free.iter().sum()
}

/// Takes up to `limit` messages: one per app in turn (starting with the `start`-th app, so that
/// a small claim does not always favour the same one), and within an app one per version in
/// turn; each route's messages in due order, each to the pod with the most free slots (the
/// version's other pods before a busy one). A route whose pods are full takes nothing more.
pub fn pick(offers: &[Offer], limit: usize, start: usize) -> Vec<Pick> {
    let mut apps: Vec<(i32, Vec<usize>)> = Vec::new();
    for (i, o) in offers.iter().enumerate() {
        match apps.iter_mut().find(|(app, _)| *app == o.app) {
            Some((_, routes)) => routes.push(i),
            None => apps.push((o.app, vec![i])),
        }
    }
    let mut free: Vec<Vec<usize>> = offers.iter().map(|o| o.free.clone()).collect();
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
            for t in 0..routes.len() {
                let r = routes[(turn[a] + t) % routes.len()];
                if next[r] >= offers[r].due {
                    continue;
                }
                let Some(pod) = roomiest(&free[r]) else { continue };
                out.push(Pick { route: r, nth: next[r], pod });
                next[r] += 1;
                free[r][pod] -= 1;
                turn[a] = (turn[a] + t + 1) % routes.len();
                progressed = true;
                break;
            }
        }
        if !progressed {
            return out;
        }
    }
}

/// The pod with the most free slots (the first of equals); None when all are full.
fn roomiest(free: &[usize]) -> Option<usize> {
    let (pod, slots) = free.iter().enumerate().fold((0, 0), |best, (i, &n)| if n > best.1 { (i, n) } else { best });
    (slots > 0).then_some(pod)
}

#[cfg(test)]
mod tests;
