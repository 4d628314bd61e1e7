//! `workflow.event_create`: lock and read the state the rules need, let `pgworld_core::plan`
//! decide, apply its writes, answer. Lock order (events.md §2): run row → child row → hook token
//! → slot allocation → the app's active-run counter.

use crate::db::{self, OrInternal, Row, Writes};
use crate::entities::*;
use crate::{event_writes, ffi, guc, quotas, tenancy};

use pgrx::spi::SpiClient;
use pgrx::Spi;
use pgworld_core::ids::MonotonicUlid;
use pgworld_core::model::*;
use pgworld_core::plan::{self, ChildKind, ChildWrite, Ctx, Lookups, Plan, ReplyEvent, RunWrite, State, Write};
use pgworld_core::render;
use pgworld_core::request::{self, CreateRequest, EventType};
use pgworld_core::{Code, WfError, WfResult};
use serde_json::{Map, Value};
use std::cell::RefCell;

/// Largest skipped-event report per create (events.md §3.3).
const REPORT_LIMIT: i64 = 500;

thread_local! {
    static RUN_IDS: RefCell<MonotonicUlid> = RefCell::new(MonotonicUlid::default());
}

pub fn mint_run_id(now: i64) -> String {
    let rnd: [u8; 16] = ffi::random_bytes("run ids");
    let ms = u64::try_from(now / 1000).unwrap_or_default();
    format!("wrun_{}", RUN_IDS.with(|m| m.borrow_mut().next(ms, u128::from_le_bytes(rnd))))
}

/// An event pgworld writes on a run's behalf (a dead message, an orphan, a cancel), in envelope
/// payload mode, through the same rules as any caller's.
pub fn create_on_behalf(run_id: &str, body: Value) -> WfResult<Value> {
    event_create(run_id, &serde_json::json!({"$payload": "envelope"}), &body)
}

pub fn event_create(run_id: &str, query: &Value, body: &Value) -> WfResult<Value> {
    Spi::connect_mut(|c| {
        let app = tenancy::current_app()?;
        let req = request::parse_create(run_id, query, body)?;
        let now = ffi::now_micros();
        let ctx = Ctx {
            now,
            min_spec_version: guc::MIN_SPEC_VERSION,
            max_spec_version: guc::MAX_SPEC_VERSION.get(),
            default_spec_version: guc::DEFAULT_SPEC_VERSION.get(),
            minted_run_id: if req.run_id.is_none() { mint_run_id(now) } else { String::new() },
        };
        let run_id = req.run_id.clone().unwrap_or_else(|| ctx.minted_run_id.clone());
        let needs = plan::lookups(&req);
        // A lost race on a contended insert (resilient start, hook token) re-reads and re-plans once.
        for _ in 0..2 {
            let (state, max_runs) = gather(c, app, &run_id, &req, &needs);
            let plan = plan::plan(&req, &state, &ctx)?;
            if let Some(reply) = apply(c, app, &req, &state, &plan, &ctx, max_runs)? {
                return Ok(reply);
            }
        }
        pgrx::error!("pgworld: event_create for run {run_id} kept losing a concurrent insert")
    })
}

/// `cols` qualified by `alias` (items that are expressions stay as they are).
fn qualified(cols: &str, alias: &str) -> String {
    cols.split(',')
        .map(|c| c.trim())
        .map(|c| if c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') { format!("{alias}.{c}") } else { c.to_owned() })
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_and_child_sql(kind: ChildKind, run_cols: &str) -> String {
    let (table, id, cols) = match kind {
        ChildKind::Step => ("steps", "step_id", STEP_COLS),
        ChildKind::Hook => ("hooks", "hook_id", HOOK_COLS),
        ChildKind::Wait => ("waits", "wait_id", WAIT_COLS),
    };
    format!(
        "SELECT {}, (SELECT q.max_events_per_run FROM workflow.quotas q WHERE q.application_id = $1)::bigint, {} \
         FROM workflow.runs r JOIN workflow.{table} k ON k.application_id = r.application_id AND k.run_id = r.run_id AND k.{id} = $3 \
         WHERE r.application_id = $1 AND r.run_id = $2 FOR UPDATE OF r, k",
        qualified(run_cols, "r"),
        qualified(cols, "k")
    )
}

/// The state the rules need, and (for a run about to be created) the app's `maxRuns`.
fn gather(c: &mut SpiClient<'_>, app: i32, run_id: &str, req: &CreateRequest, needs: &Lookups) -> (State, Option<i64>) {
    let cols = if needs.run_payloads { RUN_COLS } else { RUN_COLS_LIGHT };
    let corr = req.correlation_id.clone().unwrap_or_default();
    let key = [app.into(), run_id.into(), corr.as_str().into()];
    let mut state = State::default();
    let mut child_read = false;
    // An event that moves an existing child on locks it with the run, in one statement (run
    // first, then the child: the lock order). Locking both lets the rows be re-read at their
    // latest versions if a concurrent writer held them.
    let mut locked = None;
    if let (Some(kind), true) = (needs.child, needs.child_expected) {
        let sql = run_and_child_sql(kind, cols);
        if let Some(r) = db::update(c, &sql, &key).next() {
            let at = db::Shifted(&r, RUN_COL_COUNT + 1);
            match kind {
                ChildKind::Step => state.step = Some(step_from(&at)),
                ChildKind::Hook => state.hook = Some(hook_from(&at).0),
                ChildKind::Wait => state.wait = Some(wait_from(&at)),
            }
            child_read = true;
            locked = Some((run_from(&r), r.opt_bigint(RUN_COL_COUNT + 1)));
        }
    }
    if locked.is_none() {
        // The run row lock and the app's event quota in one statement.
        let run_sql = format!(
            "SELECT {cols}, (SELECT q.max_events_per_run FROM workflow.quotas q WHERE q.application_id = $1)::bigint \
             FROM workflow.runs WHERE application_id = $1 AND run_id = $2 FOR UPDATE"
        );
        locked =
            db::update(c, &run_sql, &[app.into(), run_id.into()]).next().map(|r| (run_from(&r), r.opt_bigint(RUN_COL_COUNT + 1)));
    }
    let (run, max_events, version_expired, max_runs) = match locked {
        Some((run, quota)) => (Some(run), quota.unwrap_or(quotas::DEFAULT_MAX_EVENTS_PER_RUN), false, None),
        None => {
            // A run about to be created: its quotas and its version's status in one statement.
            let row = db::select(
                c,
                "SELECT q.max_events_per_run::bigint, q.max_runs::bigint, \
                 EXISTS (SELECT 1 FROM workflow.deployment_versions v \
                         WHERE v.application_id = $1 AND v.deployment_id = $2 AND v.status = 'expired') \
                 FROM (SELECT) AS one LEFT JOIN workflow.quotas q ON q.application_id = $1",
                &[app.into(), needs.version.clone().into()],
            )
            .next()
            .map(|r| (r.opt_bigint(1), r.opt_bigint(2), r.flag(3)));
            let (quota, max_runs, expired) = row.ok_or("no row").or_internal("quotas and version status");
            (None, quota.unwrap_or(quotas::DEFAULT_MAX_EVENTS_PER_RUN), expired, max_runs)
        }
    };
    state.max_events_per_run = max_events;
    state.version_expired = version_expired;
    if run.is_some() {
        match needs.child.filter(|_| !child_read) {
            Some(ChildKind::Step) => {
                let sql = format!("SELECT {STEP_COLS} FROM workflow.steps WHERE application_id = $1 AND run_id = $2 AND step_id = $3 FOR UPDATE");
                state.step = db::update(c, &sql, &key).next().map(|r| step_from(&r));
            }
            Some(ChildKind::Hook) => {
                let sql = format!("SELECT {HOOK_COLS} FROM workflow.hooks WHERE application_id = $1 AND run_id = $2 AND hook_id = $3 FOR UPDATE");
                state.hook = db::update(c, &sql, &key).next().map(|r| hook_from(&r).0);
            }
            Some(ChildKind::Wait) => {
                let sql = format!("SELECT {WAIT_COLS} FROM workflow.waits WHERE application_id = $1 AND run_id = $2 AND wait_id = $3 FOR UPDATE");
                state.wait = db::update(c, &sql, &key).next().map(|r| wait_from(&r));
            }
            None => {}
        }
        if let Some(token) = &needs.token {
            state.token_holder = db::select(
                c,
                "SELECT run_id FROM workflow.hooks WHERE application_id = $1 AND token = $2 AND status <> 'disposed'",
                &[app.into(), token.as_str().into()],
            )
            .next()
            .map(|r| r.text(1));
        }
        if let Some(corr) = &needs.attr_correlation {
            state.attr_correlation_taken = db::exists(
                c,
                "SELECT 1 FROM workflow.events WHERE application_id = $1 AND run_id = $2 AND event_type = 'attr_set' AND correlation_id = $3",
                &[app.into(), run_id.into(), corr.as_str().into()],
            );
        }
        if let Some(resume_id) = &needs.resume_id {
            let sql =
                format!("SELECT {EVENT_COLS} FROM workflow.events WHERE application_id = $1 AND run_id = $2 AND resume_id = $3");
            state.prior_resume =
                db::select(c, &sql, &[app.into(), run_id.into(), resume_id.as_str().into()]).next().map(|r| event_from(&r));
        }
    }
    state.run = run;
    (state, max_runs)
}

/// Applies a plan. `Ok(None)`: a concurrent writer won a contended insert first; nothing was written.
fn apply(
    c: &mut SpiClient<'_>,
    app: i32,
    req: &CreateRequest,
    state: &State,
    plan: &Plan,
    ctx: &Ctx,
    max_runs: Option<i64>,
) -> WfResult<Option<Value>> {
    let before = state.run.as_ref().map_or(0, |r| r.event_count);
    let count_after = before + plan.events.len() as i64;
    let run_id = plan.run_id.as_str();

    // Contended inserts go first, so losing one leaves nothing to undo.
    if let RunWrite::Insert(run) = &plan.run {
        if !event_writes::insert_run(c, app, run, count_after) {
            if req.event_type == EventType::RunCreated {
                return Err(WfError::new(Code::RunExists, format!("Run {run_id} already exists")));
            }
            return Ok(None);
        }
    }
    if let ChildWrite::Hook(Write::Insert(h)) = &plan.child {
        if !event_writes::insert_hook(c, app, h) {
            return Ok(None);
        }
    }
    let admission = if plan.new_active_run { Some(quotas::admit_run(c, app, max_runs)?) } else { None };

    let mut appended: Vec<Event> = plan
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| Event {
            run_id: run_id.to_owned(),
            slot: before + i as i64 + 1,
            seq: 0,
            event_type: e.event_type.as_str().to_owned(),
            correlation_id: e.correlation_id.clone(),
            event_data: e.event_data.clone(),
            spec_version: e.spec_version,
            created_at: ctx.now,
            resume_id: e.resume_id.clone(),
            resume_digest: e.resume_digest.clone(),
        })
        .collect();
    let mut w = Writes::default();
    match &plan.child {
        ChildWrite::Step(Write::Insert(s)) => event_writes::insert_step(&mut w, app, s),
        ChildWrite::Step(Write::Update(s)) => event_writes::update_step(&mut w, app, s),
        ChildWrite::Hook(Write::Update(h)) => event_writes::update_hook(&mut w, app, h),
        ChildWrite::Wait(Write::Insert(wt)) => event_writes::insert_wait(&mut w, app, wt),
        ChildWrite::Wait(Write::Update(wt)) => event_writes::update_wait(&mut w, app, wt),
        ChildWrite::Hook(Write::Insert(_)) | ChildWrite::None => {}
    }
    match &plan.run {
        RunWrite::Update(run) => event_writes::update_run(&mut w, app, run, count_after),
        RunWrite::None if !appended.is_empty() => event_writes::bump_run(&mut w, app, run_id, count_after),
        RunWrite::None | RunWrite::Insert(_) => {}
    }
    let mut counter = None;
    if plan.terminated {
        if matches!(plan.child, ChildWrite::None) {
            event_writes::terminate(&mut w, app, run_id, ctx.now);
        } else {
            // Never planned today; were it, the child's row must not be written twice in one statement.
            let mut own = Writes::default();
            event_writes::terminate(&mut own, app, run_id, ctx.now);
            own.run(c);
        }
        counter = Some((quotas::end_run(c, app), -1));
    }
    if let Some(quotas::Admission::Counted { shard }) = admission {
        counter = Some((shard, counter.map_or(0, |(_, d)| d) + 1));
    }
    if let Some((shard, delta)) = counter {
        event_writes::count_runs(&mut w, app, shard, delta);
    }
    for (i, e) in appended.iter_mut().enumerate() {
        let rows = if i == 0 {
            let mut first = std::mem::take(&mut w);
            first.add(event_writes::INSERT_EVENT, event_writes::event_args(app, &*e));
            first.run(c)
        } else {
            Some(db::update(c, event_writes::INSERT_EVENT, &event_writes::event_args(app, &*e)))
        };
        e.seq = rows.and_then(|mut t| t.next().map(|r| r.bigint(1))).unwrap_or_default();
    }
    w.run(c);
    if let Some(quotas::Admission::Serialized) = admission {
        quotas::admit_run_serialized(c, app)?;
    }
    Ok(Some(reply(c, app, req, state, plan, &appended, before)))
}

fn reply(c: &SpiClient<'_>, app: i32, req: &CreateRequest, state: &State, plan: &Plan, appended: &[Event], before: i64) -> Value {
    let o = req.opts;
    let r = &plan.reply;
    let mut out = Map::new();
    let event = match &r.event {
        ReplyEvent::Appended(i) => appended.get(*i).map_or(Value::Null, |e| render::event_json(e, o, true)),
        ReplyEvent::Existing(e) => render::event_json(e, o, true),
        ReplyEvent::Null => Value::Null,
    };
    out.insert("event".into(), event);
    if r.run {
        out.insert("run".into(), render::run_json(&plan.run_after, o));
    }
    match &plan.child {
        ChildWrite::Step(Write::Insert(s) | Write::Update(s)) if r.step => {
            out.insert("step".into(), render::step_json(s, o));
        }
        ChildWrite::Hook(Write::Insert(h) | Write::Update(h)) if r.hook => {
            out.insert("hook".into(), render::hook_json(h, o));
        }
        ChildWrite::Wait(Write::Insert(w) | Write::Update(w)) if r.wait => {
            out.insert("wait".into(), render::wait_json(w));
        }
        ChildWrite::None if r.hook => {
            // A deduplicated hook_received answers with the hook as it stands.
            if let Some(h) = &state.hook {
                out.insert("hook".into(), render::hook_json(h, o));
            }
        }
        _ => {}
    }
    if r.step_created {
        out.insert("stepCreated".into(), Value::Bool(true));
    }
    if r.max_events {
        out.insert("maxEvents".into(), Value::from(state.max_events_per_run));
    }
    if let (Some(expected), false) = (req.event_count, appended.is_empty()) {
        let first = before + 1;
        if first > expected + 1 {
            let sql = format!(
                "SELECT {EVENT_COLS} FROM workflow.events WHERE application_id = $1 AND run_id = $2 AND slot > $3 AND slot < $4 ORDER BY slot LIMIT $5"
            );
            let skipped: Vec<Value> = db::select(
                c,
                &sql,
                &[app.into(), plan.run_id.as_str().into(), expected.into(), first.into(), REPORT_LIMIT.into()],
            )
            .map(|row| render::event_json(&event_from(&row), o, false))
            .collect();
            let cursor = skipped.last().and_then(|e| e.get("eventId")).cloned().unwrap_or(Value::Null);
            out.insert("events".into(), Value::Array(skipped));
            out.insert("cursor".into(), cursor);
            out.insert("hasMore".into(), Value::Bool(first - 1 - expected > REPORT_LIMIT));
        }
    }
    Value::Object(out)
}
