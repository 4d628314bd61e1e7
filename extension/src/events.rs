//! `workflow.event_create`: lock and read the state the rules need, let `pgworld_core::plan`
//! decide, apply its writes, answer. Lock order (events.md §2): run row → child row → hook token
//! → slot allocation → the app's active-run counter.

use crate::db::{self, json_datum, opt_ts_datum, ts_datum, OrInternal, Row};
use crate::entities::*;
use crate::{ffi, guc, quotas, tenancy};
use pgrx::datum::{DatumWithOid, JsonB};
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
            let state = gather(c, app, &run_id, &req, &needs);
            let plan = plan::plan(&req, &state, &ctx)?;
            if let Some(reply) = apply(c, app, &req, &state, &plan, &ctx)? {
                return Ok(reply);
            }
        }
        pgrx::error!("pgworld: event_create for run {run_id} kept losing a concurrent insert")
    })
}

fn gather(c: &mut SpiClient<'_>, app: i32, run_id: &str, req: &CreateRequest, needs: &Lookups) -> State {
    // The run row lock and the app's event quota in one statement: this runs for every event.
    let cols = if needs.run_payloads { RUN_COLS } else { RUN_COLS_LIGHT };
    let run_sql = format!(
        "SELECT {cols}, (SELECT q.max_events_per_run FROM workflow.quotas q WHERE q.application_id = $1)::bigint \
         FROM workflow.runs WHERE application_id = $1 AND run_id = $2 FOR UPDATE"
    );
    let locked =
        db::update(c, &run_sql, &[app.into(), run_id.into()]).next().map(|r| (run_from(&r), r.opt_bigint(RUN_COL_COUNT + 1)));
    let (run, max_events, version_expired) = match locked {
        Some((run, quota)) => (Some(run), quota.unwrap_or(quotas::DEFAULT_MAX_EVENTS_PER_RUN), false),
        None => {
            // A run about to be created: its quota and its version's status in one statement.
            let row = db::select(
                c,
                "SELECT (SELECT q.max_events_per_run FROM workflow.quotas q WHERE q.application_id = $1)::bigint, \
                 EXISTS (SELECT 1 FROM workflow.deployment_versions v \
                         WHERE v.application_id = $1 AND v.deployment_id = $2 AND v.status = 'expired')",
                &[app.into(), needs.version.clone().into()],
            )
            .next()
            .map(|r| (r.opt_bigint(1), r.flag(2)));
            let (quota, expired) = row.ok_or("no row").or_internal("quota and version status");
            (None, quota.unwrap_or(quotas::DEFAULT_MAX_EVENTS_PER_RUN), expired)
        }
    };
    let mut state = State { max_events_per_run: max_events, version_expired, ..State::default() };
    let corr = req.correlation_id.clone().unwrap_or_default();
    let key = [app.into(), run_id.into(), corr.as_str().into()];
    if run.is_some() {
        match needs.child {
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
    state
}

/// Applies a plan. `Ok(None)`: a concurrent writer won a contended insert first; nothing was written.
fn apply(c: &mut SpiClient<'_>, app: i32, req: &CreateRequest, state: &State, plan: &Plan, ctx: &Ctx) -> WfResult<Option<Value>> {
    let before = state.run.as_ref().map_or(0, |r| r.event_count);
    let count_after = before + plan.events.len() as i64;
    let run_id = plan.run_id.as_str();

    // Contended inserts go first, so losing one leaves nothing to undo.
    if let RunWrite::Insert(run) = &plan.run {
        if !insert_run(c, app, run, count_after) {
            if req.event_type == EventType::RunCreated {
                return Err(WfError::new(Code::RunExists, format!("Run {run_id} already exists")));
            }
            return Ok(None);
        }
    }
    if let ChildWrite::Hook(Write::Insert(h)) = &plan.child {
        if !insert_hook(c, app, h) {
            return Ok(None);
        }
    }
    match &plan.child {
        ChildWrite::Step(Write::Insert(s)) => insert_step(c, app, s),
        ChildWrite::Step(Write::Update(s)) => update_step(c, app, s),
        ChildWrite::Hook(Write::Update(h)) => update_hook(c, app, h),
        ChildWrite::Wait(Write::Insert(w)) => insert_wait(c, app, w),
        ChildWrite::Wait(Write::Update(w)) => update_wait(c, app, w),
        ChildWrite::Hook(Write::Insert(_)) | ChildWrite::None => {}
    }
    if let RunWrite::Update(run) = &plan.run {
        update_run(c, app, run, count_after);
    }
    // When only the event count moves, the first append carries the bump (one statement less).
    let bump_with_first = matches!(plan.run, RunWrite::None);
    let mut appended = Vec::with_capacity(plan.events.len());
    for (i, e) in plan.events.iter().enumerate() {
        let slot = before + i as i64 + 1;
        let sql = if i == 0 && bump_with_first {
            "WITH bump AS (UPDATE workflow.runs SET event_count = $11 WHERE application_id = $1 AND run_id = $2) \
             INSERT INTO workflow.events (application_id, run_id, slot, event_type, correlation_id, event_data, spec_version, \
             created_at, resume_id, resume_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq"
        } else {
            "INSERT INTO workflow.events (application_id, run_id, slot, event_type, correlation_id, event_data, spec_version, \
             created_at, resume_id, resume_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq"
        };
        let mut args: Vec<DatumWithOid<'_>> = vec![
            app.into(),
            run_id.into(),
            slot.into(),
            e.event_type.as_str().into(),
            e.correlation_id.clone().into(),
            e.event_data.clone().map(|m| JsonB(Value::Object(m))).into(),
            e.spec_version.into(),
            ts_datum(ctx.now).into(),
            e.resume_id.clone().into(),
            e.resume_digest.clone().into(),
        ];
        if i == 0 && bump_with_first {
            args.push(count_after.into());
        }
        let seq = db::update(c, sql, &args).next().map(|r| r.bigint(1)).unwrap_or_default();
        appended.push(Event {
            run_id: run_id.to_owned(),
            slot,
            seq,
            event_type: e.event_type.as_str().to_owned(),
            correlation_id: e.correlation_id.clone(),
            event_data: e.event_data.clone(),
            spec_version: e.spec_version,
            created_at: ctx.now,
            resume_id: e.resume_id.clone(),
            resume_digest: e.resume_digest.clone(),
        });
    }
    if plan.terminated {
        terminate(c, app, run_id, ctx.now);
    }
    if plan.new_active_run {
        quotas::admit_run(c, app)?;
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

fn insert_run(c: &mut SpiClient<'_>, app: i32, r: &Run, event_count: i64) -> bool {
    db::update_any(
        c,
        "INSERT INTO workflow.runs (application_id, run_id, status, deployment_id, workflow_name, spec_version, event_count, \
         execution_context, input, attributes, encryption_public_key, created_at, updated_at, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (application_id, run_id) DO NOTHING RETURNING 1",
        &[
            app.into(),
            r.run_id.as_str().into(),
            r.status.as_str().into(),
            r.deployment_id.as_str().into(),
            r.workflow_name.as_str().into(),
            r.spec_version.into(),
            event_count.into(),
            json_datum(&r.execution_context).into(),
            json_datum(&r.input).into(),
            JsonB(Value::Object(r.attributes.clone())).into(),
            r.encryption_public_key.clone().into(),
            ts_datum(r.created_at).into(),
            ts_datum(r.updated_at).into(),
            opt_ts_datum(r.started_at).into(),
        ],
    )
}

fn update_run(c: &mut SpiClient<'_>, app: i32, r: &Run, event_count: i64) {
    db::update(
        c,
        "UPDATE workflow.runs SET status = $3, output = $4, error = $5, error_code = $6, attributes = $7, updated_at = $8, \
         started_at = $9, completed_at = $10, expired_at = $11, event_count = $12 WHERE application_id = $1 AND run_id = $2",
        &[
            app.into(),
            r.run_id.as_str().into(),
            r.status.as_str().into(),
            json_datum(&r.output).into(),
            json_datum(&r.error).into(),
            r.error_code.clone().into(),
            JsonB(Value::Object(r.attributes.clone())).into(),
            ts_datum(r.updated_at).into(),
            opt_ts_datum(r.started_at).into(),
            opt_ts_datum(r.completed_at).into(),
            opt_ts_datum(r.expired_at).into(),
            event_count.into(),
        ],
    );
}

fn insert_step(c: &mut SpiClient<'_>, app: i32, s: &Step) {
    db::update(
        c,
        "INSERT INTO workflow.steps (application_id, run_id, step_id, step_name, status, attempt, spec_version, input, \
         created_slot, created_at, updated_at, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            app.into(),
            s.run_id.as_str().into(),
            s.step_id.as_str().into(),
            s.step_name.as_str().into(),
            s.status.as_str().into(),
            s.attempt.into(),
            s.spec_version.into(),
            json_datum(&s.input).into(),
            s.created_slot.into(),
            ts_datum(s.created_at).into(),
            ts_datum(s.updated_at).into(),
            opt_ts_datum(s.started_at).into(),
        ],
    );
}

fn update_step(c: &mut SpiClient<'_>, app: i32, s: &Step) {
    db::update(
        c,
        "UPDATE workflow.steps SET status = $4, attempt = $5, output = $6, error = $7, retry_after = $8, updated_at = $9, \
         started_at = $10, completed_at = $11 WHERE application_id = $1 AND run_id = $2 AND step_id = $3",
        &[
            app.into(),
            s.run_id.as_str().into(),
            s.step_id.as_str().into(),
            s.status.as_str().into(),
            s.attempt.into(),
            json_datum(&s.output).into(),
            json_datum(&s.error).into(),
            opt_ts_datum(s.retry_after).into(),
            ts_datum(s.updated_at).into(),
            opt_ts_datum(s.started_at).into(),
            opt_ts_datum(s.completed_at).into(),
        ],
    );
}

/// Claims the token through the live-token unique index; false when another live hook holds it.
fn insert_hook(c: &mut SpiClient<'_>, app: i32, h: &Hook) -> bool {
    db::update_any(
        c,
        "INSERT INTO workflow.hooks (application_id, run_id, hook_id, token, status, owner_id, project_id, environment, metadata, \
         is_webhook, is_system, spec_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (application_id, token) WHERE status <> 'disposed' DO NOTHING RETURNING hook_seq",
        &[
            app.into(),
            h.run_id.as_str().into(),
            h.hook_id.as_str().into(),
            h.token.as_str().into(),
            h.status.as_str().into(),
            h.owner_id.as_str().into(),
            h.project_id.as_str().into(),
            h.environment.as_str().into(),
            json_datum(&h.metadata).into(),
            h.is_webhook.into(),
            h.is_system.into(),
            h.spec_version.into(),
            ts_datum(h.created_at).into(),
        ],
    )
}

fn update_hook(c: &mut SpiClient<'_>, app: i32, h: &Hook) {
    db::update(
        c,
        "UPDATE workflow.hooks SET status = $4, received_at = $5, disposed_at = $6 WHERE application_id = $1 AND run_id = $2 AND hook_id = $3",
        &[
            app.into(),
            h.run_id.as_str().into(),
            h.hook_id.as_str().into(),
            h.status.as_str().into(),
            opt_ts_datum(h.received_at).into(),
            opt_ts_datum(h.disposed_at).into(),
        ],
    );
}

fn insert_wait(c: &mut SpiClient<'_>, app: i32, w: &Wait) {
    db::update(
        c,
        "INSERT INTO workflow.waits (application_id, run_id, wait_id, status, resume_at, spec_version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            app.into(),
            w.run_id.as_str().into(),
            w.wait_id.as_str().into(),
            w.status.as_str().into(),
            opt_ts_datum(w.resume_at).into(),
            w.spec_version.into(),
            ts_datum(w.created_at).into(),
            ts_datum(w.updated_at).into(),
        ],
    );
}

fn update_wait(c: &mut SpiClient<'_>, app: i32, w: &Wait) {
    db::update(
        c,
        "UPDATE workflow.waits SET status = $4, completed_at = $5, updated_at = $6 WHERE application_id = $1 AND run_id = $2 AND wait_id = $3",
        &[
            app.into(),
            w.run_id.as_str().into(),
            w.wait_id.as_str().into(),
            w.status.as_str().into(),
            opt_ts_datum(w.completed_at).into(),
            ts_datum(w.updated_at).into(),
        ],
    );
}

/// Run termination effects (events.md §7): hooks disposed (tokens freed), waits completed,
/// the run's active-run slot released. No events are written for these. One statement: the
/// data-modifying CTEs run whether or not anything reads them.
fn terminate(c: &mut SpiClient<'_>, app: i32, run_id: &str, now: i64) {
    db::update(
        c,
        "WITH hooks AS (UPDATE workflow.hooks SET status = 'disposed', disposed_at = $3 \
                        WHERE application_id = $1 AND run_id = $2 AND status <> 'disposed'), \
              waits AS (UPDATE workflow.waits SET status = 'completed', completed_at = $3, updated_at = $3 \
                        WHERE application_id = $1 AND run_id = $2 AND status = 'waiting') \
         UPDATE workflow.run_counters SET active = active - 1 WHERE application_id = $1 AND shard = $4::smallint",
        &[app.into(), run_id.into(), ts_datum(now).into(), quotas::release_shard().into()],
    );
}
