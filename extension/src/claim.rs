//! Claims (spec/queue.md §5): due, routable messages under leases, oldest first, and the lease
//! expiry and next-due time that go with them. Each backend keeps scan floors
//! (`pgworld_core::queue::scan`) so that claims stay fast while an old snapshot keeps the queue's
//! dead row versions from being vacuumed. A floor changes only when the claim's transaction
//! commits.

use crate::db::{self, OrInternal, Row};
use crate::messages::{self, held_from, HeldRow, HELD_COLS};
use crate::pods;
use pgrx::datum::{JsonB, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{register_xact_callback, PgXactCallbackEvent, Uuid};
use pgworld_core::queue::fair::{self, Offer};
use pgworld_core::queue::plan::Happening;
use pgworld_core::queue::scan::{self, ExpiryFloor, Floor, Key, Scan, Taken, Unseen};
use pgworld_core::waiting_states;
use std::cell::RefCell;
use std::collections::HashMap;

type Route = (i32, String);

#[derive(Clone, Default)]
struct Floors {
    routes: HashMap<Route, Floor>,
    expiry: Option<ExpiryFloor>,
}

thread_local! {
    static COMMITTED: RefCell<Floors> = RefCell::new(Floors::default());
    /// This transaction's floors, once a claim ran in it.
    static PENDING: RefCell<Option<Floors>> = const { RefCell::new(None) };
}

fn current_floors() -> Floors {
    PENDING.with(|p| p.borrow().clone()).unwrap_or_else(|| COMMITTED.with(|c| c.borrow().clone()))
}

fn stage(floors: Floors) {
    let first = PENDING.with(|p| p.borrow_mut().replace(floors).is_none());
    if first {
        register_xact_callback(PgXactCallbackEvent::Commit, || {
            if let Some(f) = PENDING.with(|p| p.borrow_mut().take()) {
                COMMITTED.with(|c| *c.borrow_mut() = f);
            }
        });
        register_xact_callback(PgXactCallbackEvent::Abort, || PENDING.with(|p| drop(p.borrow_mut().take())));
    }
}

/// A timestamptz argument from PostgreSQL microseconds, where `i64::MIN` is `-infinity`.
fn ts_arg(raw: i64) -> TimestampWithTimeZone {
    if raw == i64::MIN {
        TimestampWithTimeZone::negative_infinity()
    } else {
        TimestampWithTimeZone::try_from(raw).or_internal("claim floor timestamp")
    }
}

fn raw_ts(r: &pgrx::spi::SpiHeapTupleData<'_>, i: usize) -> i64 {
    match r.get::<TimestampWithTimeZone>(i).or_internal("timestamptz column") {
        Some(t) => t.into_inner(),
        None => pgrx::error!("pgworld internal error: unexpected NULL in timestamptz column {i}"),
    }
}

/// The claim's `now()` and the transactions its snapshot did not see committed; read before the
/// scans, so it covers every transaction they do not see either.
fn snapshot(c: &SpiClient<'_>) -> (i64, Unseen) {
    let row = db::select(
        c,
        "SELECT now(), pg_snapshot_xmax(s)::text::bigint, ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) x) \
         FROM pg_current_snapshot() s",
        &[],
    )
    .next()
    .map(|r| (raw_ts(&r, 1), r.bigint(2), r.get::<Vec<i64>>(3).or_internal("xip array").unwrap_or_default()));
    let (now, xmax, xip) = row.ok_or("no row").or_internal("snapshot");
    (now, Unseen { xmax, xip })
}

struct Candidate {
    id: i64,
    key: Key,
    ahead: bool,
}

const DUE: &str = concat!("m.state IN (", waiting_states!(), ") AND m.available_at <= now()");

/// Locks up to `max` due messages of one route as `scan` says.
fn scan_route(c: &mut SpiClient<'_>, route: &Route, scan: &Scan, max: i32, out: &mut Vec<Candidate>) -> usize {
    let (key, late) = match scan {
        Scan::Full => (scan::START, None),
        Scan::From(key, late) => (*key, Some(late)),
    };
    let args = |c: &mut SpiClient<'_>, sql: &str, extra: Vec<pgrx::datum::DatumWithOid<'static>>| {
        let mut a: Vec<pgrx::datum::DatumWithOid<'static>> =
            vec![route.0.into(), route.1.clone().into(), ts_arg(key.0).into(), key.1.into(), max.into()];
        a.extend(extra);
        db::update(c, sql, &a).map(|r| (r.bigint(1), raw_ts(&r, 2))).collect::<Vec<_>>()
    };
    let ahead = args(
        c,
        &format!(
            "SELECT m.id, m.available_at FROM workflow.messages m \
             WHERE m.application_id = $1 AND m.deployment_version = $2 AND {DUE} AND (m.available_at, m.id) > ($3, $4) \
             ORDER BY m.available_at, m.id LIMIT $5 FOR UPDATE SKIP LOCKED"
        ),
        vec![],
    );
    out.extend(ahead.into_iter().map(|(id, at)| Candidate { id, key: (at, id), ahead: true }));
    let Some(late) = late else {
        return 0;
    };
    // No ORDER BY: the ready_xid index finds these few rows; the claim index would walk them all.
    let found = args(
        c,
        &format!(
            "SELECT m.id, m.available_at FROM workflow.messages m \
             WHERE m.application_id = $1 AND m.deployment_version = $2 AND {DUE} AND (m.available_at, m.id) <= ($3, $4) \
               AND (m.ready_xid >= $6 OR m.ready_xid = ANY($7)) LIMIT $5 FOR UPDATE SKIP LOCKED"
        ),
        vec![late.xmax.into(), late.xip.clone().into()],
    );
    let n = found.len();
    out.extend(found.into_iter().map(|(id, at)| Candidate { id, key: (at, id), ahead: false }));
    n
}

/// `workflow.dispatch_claim(owner, max, lease_seconds)`.
// pgrx reads the column names from the signature, so the row type cannot be an alias.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, name = "_dispatch_claim")]
fn dispatch_claim(
    owner: &str,
    max: i32,
    lease_seconds: f64,
) -> TableIterator<
    'static,
    (
        name!(lease_id, Uuid),
        name!(id, i64),
        name!(queue_name, String),
        name!(kind, String),
        name!(url, Option<String>),
        name!(encoding, String),
        name!(body_json, Option<JsonB>),
        name!(body_cbor, Option<Vec<u8>>),
        name!(headers, Option<JsonB>),
        name!(attempts, i32),
        name!(deployment_version, String),
        name!(application_id, i32),
    ),
> {
    let max = max.clamp(1, 1000);
    let lease_seconds = if lease_seconds.is_finite() { lease_seconds.clamp(0.1, 86_400.0) } else { 60.0 };
    let rows = crate::tenancy::with_cross_app(|| {
        Spi::connect_mut(|c| {
            let mut floors = current_floors();
            let (now, unseen) = snapshot(c);
            expire_due_leases(c, &mut floors, now, i64::from(max));
            let picked = claim_due(c, &mut floors, now, unseen, max);
            stage(floors);
            if picked.is_empty() {
                return Vec::new();
            }
            lease(c, owner, &picked, lease_seconds)
        })
    });
    TableIterator::new(rows)
}

thread_local! {
    /// Which app a claim serves first, turning on every claim.
    static TURN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The pods that serve one route, with their limits.
struct RoutePods {
    ids: Vec<String>,
    targets: Vec<pods::Target>,
}

/// Every routable (app, version) and its pods, in a stable order.
fn routes_and_pods(c: &SpiClient<'_>) -> (Vec<Route>, Vec<RoutePods>) {
    let mut routes: Vec<Route> = Vec::new();
    let mut served: Vec<RoutePods> = Vec::new();
    for r in db::select(
        c,
        "SELECT application_id, deployment_version, pod_id, max_concurrency FROM workflow.handlers ORDER BY 1, 2, 3",
        &[],
    ) {
        let route = (r.int(1), r.text(2));
        let pod = r.text(3);
        let target = pods::Target::new(route.0, &pod, r.int(4));
        if routes.last() != Some(&route) {
            routes.push(route);
            served.push(RoutePods { ids: Vec::new(), targets: Vec::new() });
        }
        if let Some(last) = served.last_mut() {
            last.ids.push(pod);
            last.targets.push(target);
        }
    }
    (routes, served)
}

/// How many more deliveries each route's pods take now; `usize::MAX` without per-pod limits.
fn capacities(c: &mut SpiClient<'_>, served: &[RoutePods]) -> Vec<usize> {
    if !pods::enforced() {
        return vec![usize::MAX; served.len()];
    }
    pods::rebuild(c);
    let all: Vec<&pods::Target> = served.iter().flat_map(|s| &s.targets).collect();
    let mut held = pods::held(&all);
    let full: Vec<&pods::Target> = all.iter().zip(&held).filter(|(t, h)| **h >= t.max).map(|(t, _)| *t).collect();
    if !full.is_empty() && pods::confirm(c, &full) {
        held = pods::held(&all);
    }
    let mut room = held.iter().zip(&all).map(|(h, t)| t.max.saturating_sub(*h) as usize);
    served.iter().map(|s| room.by_ref().take(s.targets.len()).sum()).collect()
}

/// Picks due messages over every routable (app, version), fairly between apps and between an
/// app's versions (`pgworld_core::queue::fair`), each route's oldest first and no more than its
/// pods have room for, moving the floors; returns each message with its lease and its pod.
fn claim_due(c: &mut SpiClient<'_>, floors: &mut Floors, now: i64, unseen: Unseen, max: i32) -> Vec<Leasing> {
    let (routes, served) = routes_and_pods(c);
    let limit = usize::try_from(max).unwrap_or(1);
    let room = capacities(c, &served);
    let scans: Vec<Scan> = routes.iter().map(|r| scan::plan(floors.routes.get(r), now)).collect();
    let mut due: Vec<Vec<Candidate>> = Vec::with_capacity(routes.len());
    let mut late_found = Vec::with_capacity(routes.len());
    // How many each route's scan looked for: no more than its pods have room for.
    let wanted: Vec<usize> = room.iter().map(|r| (*r).min(limit)).collect();
    for ((route, scan), n) in routes.iter().zip(&scans).zip(&wanted) {
        let mut found = Vec::new();
        // A route whose pods are all busy is not looked at: its floor stays where it was.
        let n = i32::try_from(*n).unwrap_or(max);
        late_found.push(if n > 0 { scan_route(c, route, scan, n, &mut found) } else { 0 });
        found.sort_by_key(|m| m.key);
        due.push(found);
    }
    let offers: Vec<Offer> = routes.iter().zip(&due).map(|((app, _), d)| Offer { app: *app, due: d.len() }).collect();
    let turn = TURN.with(|t| {
        let n = t.get();
        t.set(n.wrapping_add(1));
        n
    });
    // Each route's picks come in its due order, and a pod that fills up stays full for the rest
    // of the assignment, so what a route takes stays a prefix of its due messages (the floors
    // depend on that).
    let picks = fair::pick(&offers, limit, turn);
    let messages: Vec<(usize, i64)> = picks.iter().map(|p| (p.route, due[p.route][p.nth].id)).collect();
    let targets: Vec<&[pods::Target]> = served.iter().map(|s| s.targets.as_slice()).collect();
    let assigned = pods::assign(&targets, &messages, turn);
    let mut taken = vec![Taken::default(); routes.len()];
    let mut late_taken = vec![0usize; routes.len()];
    let mut out = Vec::with_capacity(limit);
    for (p, a) in picks.iter().zip(assigned) {
        let Some((pod, lease)) = a else { continue };
        let m = &due[p.route][p.nth];
        if m.ahead {
            taken[p.route].last_ahead = Some(m.key);
        } else {
            late_taken[p.route] += 1;
        }
        out.push(Leasing { id: m.id, lease, pod: served[p.route].ids[pod].clone() });
    }
    let mut live = HashMap::with_capacity(routes.len());
    for (i, route) in routes.into_iter().enumerate() {
        let next = if wanted[i] > 0 {
            // A late scan that found as many as it looked for may have left some behind.
            taken[i].all_late_taken = late_found[i] < wanted[i] && late_taken[i] == late_found[i];
            Some(scan::advance(floors.routes.get(&route), &scans[i], unseen.clone(), &taken[i], now))
        } else {
            floors.routes.get(&route).cloned()
        };
        if let Some(next) = next {
            live.insert(route, next);
        }
    }
    // Routes without handlers now drop their floors.
    floors.routes = live;
    out
}

/// A message the claim leases: its lease id and the pod it goes to.
struct Leasing {
    id: i64,
    lease: Uuid,
    pod: String,
}

/// A claimed message as `dispatch_claim` returns it.
type ClaimRow =
    (Uuid, i64, String, String, Option<String>, String, Option<JsonB>, Option<Vec<u8>>, Option<JsonB>, i32, String, i32);

/// Leases the locked messages to `owner`, each to its pod's URL for its kind.
fn lease(c: &mut SpiClient<'_>, owner: &str, picked: &[Leasing], lease_seconds: f64) -> Vec<ClaimRow> {
    let ids: Vec<i64> = picked.iter().map(|p| p.id).collect();
    let leases: Vec<Uuid> = picked.iter().map(|p| p.lease).collect();
    let pods: Vec<String> = picked.iter().map(|p| p.pod.clone()).collect();
    db::update(
        c,
        // By primary key (`= ANY`), each row's lease and pod looked up by its place in the arrays:
        // a join with the arrays could be planned as a scan of the whole queue.
        "WITH claimed AS (UPDATE workflow.messages m SET state = 'leased', \
           lease_id = ($4::uuid[])[array_position($2::bigint[], m.id)], \
           lease_pod = ($5::text[])[array_position($2::bigint[], m.id)], \
           lease_owner = $1, lease_expires_at = now() + make_interval(secs => $3), updated_at = now() \
           WHERE m.id = ANY($2) \
           RETURNING m.lease_id, m.id, m.queue_name, m.kind, m.attempts, m.deployment_version, m.application_id, m.lease_pod) \
         SELECT c.lease_id, c.id, c.queue_name, c.kind, \
           (SELECT CASE c.kind WHEN 'workflow' THEN h.workflow_url WHEN 'step' THEN h.step_url ELSE h.webhook_url END \
              FROM workflow.handlers h WHERE h.application_id = c.application_id AND h.pod_id = c.lease_pod), \
           b.encoding, b.body_json, b.body_cbor, b.headers, c.attempts, c.deployment_version, c.application_id \
         FROM claimed c JOIN workflow.message_bodies b ON b.id = c.id ORDER BY c.id",
        &[owner.into(), ids.into(), lease_seconds.into(), leases.into(), pods.into()],
    )
    .map(|r| {
        (
            r.uuid(1),
            r.bigint(2),
            r.text(3),
            r.text(4),
            r.opt_text(5),
            r.text(6),
            r.json(7).map(JsonB),
            r.opt_bytes(8),
            r.json(9).map(JsonB),
            r.int(10),
            r.text(11),
            r.int(12),
        )
    })
    .collect()
}

/// Expired leases count as failed deliveries (queue.md §5.3); at most `limit` per call, from this
/// backend's expiry floor.
fn expire_due_leases(c: &mut SpiClient<'_>, floors: &mut Floors, now: i64, limit: i64) {
    let from = scan::expiry_from(floors.expiry, now);
    let (expired, last) = expire_from(c, from, limit);
    let cut_short = expired == limit;
    floors.expiry = Some(scan::expiry_advance(floors.expiry, from, last, cut_short, now));
}

/// Expires up to `limit` leases that ended before now, from `from` (inclusive) on; returns how
/// many and the last one's end.
pub fn expire_from(c: &mut SpiClient<'_>, from: i64, limit: i64) -> (i64, Option<i64>) {
    let sql = format!(
        "SELECT {HELD_COLS}, m.lease_expires_at FROM workflow.messages m \
         WHERE m.state = 'leased' AND m.lease_expires_at >= $2 AND m.lease_expires_at < now() \
         ORDER BY m.lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED"
    );
    let expired: Vec<(HeldRow, i64)> =
        db::update(c, &sql, &[limit.into(), ts_arg(from).into()]).map(|r| (held_from(&r), raw_ts(&r, 9))).collect();
    let last = expired.last().map(|(_, at)| *at);
    for (m, _) in &expired {
        messages::settle(c, m, &Happening::LeaseExpired);
    }
    (expired.len() as i64, last)
}

/// `workflow.dispatch_next_due()`: when the next claim could find work (a routable queued
/// message becoming due, or a lease expiring); NULL when nothing is waiting. Looks from this
/// backend's floors, so the dispatcher asks on the connection it claims on.
#[pg_extern(stable, parallel_safe, name = "_dispatch_next_due")]
fn dispatch_next_due() -> Option<TimestampWithTimeZone> {
    let floors = current_floors();
    let (apps, versions): (Vec<i32>, Vec<String>) = floors.routes.keys().cloned().unzip();
    let (ats, ids): (Vec<TimestampWithTimeZone>, Vec<i64>) = floors.routes.values().map(|f| (ts_arg(f.key.0), f.key.1)).unzip();
    let expiry_from = floors.expiry.map_or(i64::MIN, |e| e.at);
    crate::tenancy::with_cross_app(|| {
        Spi::connect(|c| {
            db::select(
                c,
                concat!("SELECT least((SELECT min(q.available_at) \
                               FROM (SELECT DISTINCT application_id, deployment_version FROM workflow.handlers) r \
                               LEFT JOIN unnest($1::integer[], $2::text[], $3::timestamptz[], $4::bigint[]) f(app, version, at, id) \
                                 ON f.app = r.application_id AND f.version = r.deployment_version \
                               CROSS JOIN LATERAL (SELECT m.available_at FROM workflow.messages m \
                                 WHERE m.application_id = r.application_id AND m.deployment_version = r.deployment_version \
                                   AND m.state IN (", waiting_states!(), ") \
                                   AND (m.available_at, m.id) > (coalesce(f.at, '-infinity'), coalesce(f.id, $6)) \
                                 ORDER BY m.available_at, m.id LIMIT 1) q), \
                              (SELECT min(lease_expires_at) FROM workflow.messages \
                               WHERE state = 'leased' AND lease_expires_at >= $5))"),
                &[apps.into(), versions.into(), ats.into(), ids.into(), ts_arg(expiry_from).into(), i64::MIN.into()],
            )
            .next()
            .and_then(|r| r.get::<TimestampWithTimeZone>(1).or_internal("timestamptz column"))
        })
    })
}
