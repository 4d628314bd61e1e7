//! The read routes (http-api.md §4.3–§4.6): one function each, rendered by `pgworld_core::render`.

use crate::db::{self, ts_datum};
use crate::entities::*;
use crate::tenancy;
use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;
use pgrx::Spi;
use pgworld_core::ids;
use pgworld_core::model::RunStatus;
use pgworld_core::render::{self, page};
use pgworld_core::request::{decimal_cursor, parse_page, query_str, ReadOpts};
use pgworld_core::ts::{self, Micros};
use pgworld_core::{Code, WfError, WfResult};
use serde_json::Value;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

fn with_app<R>(f: impl FnOnce(&SpiClient<'_>, i32) -> WfResult<R>) -> WfResult<R> {
    Spi::connect(|c| {
        let app = tenancy::current_app()?;
        f(c, app)
    })
}

fn not_found(code: Code, what: &str, id: &str) -> WfError {
    WfError::new(code, format!("{what} {id} not found"))
}

/// Splits `limit + 1` fetched rows into a page and whether more exist.
fn take_page<T>(mut rows: Vec<T>, limit: i64) -> (Vec<T>, bool) {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    (rows, more)
}

pub fn run_get(run_id: &str, query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    with_app(|c, app| {
        let sql = format!("SELECT {RUN_COLS} FROM workflow.runs WHERE application_id = $1 AND run_id = $2");
        db::select(c, &sql, &[app.into(), run_id.into()])
            .next()
            .map(|r| render::run_json(&run_from(&r), o))
            .ok_or_else(|| not_found(Code::RunNotFound, "Run", run_id))
    })
}

fn run_cursor_out(created_at: Micros, run_id: &str) -> String {
    // Microsecond precision, so runs created in the same millisecond are never skipped.
    let iso = ts::to_iso(created_at);
    format!("{}{:03}Z~{run_id}", &iso[..iso.len() - 1], created_at.rem_euclid(1000))
}

/// `<timestamp>~<runId>` from a previous page, or a bare ISO timestamp (fences on createdAt only).
fn run_cursor_in(cursor: &str) -> WfResult<(Micros, Option<String>)> {
    let (stamp, id) = match cursor.split_once('~') {
        Some((s, id)) => (s, Some(id.to_owned())),
        None => (cursor, None),
    };
    let dt = OffsetDateTime::parse(stamp, &Rfc3339).map_err(|_| WfError::bad_request("invalid cursor"))?;
    let micros = i64::try_from(dt.unix_timestamp_nanos() / 1000).map_err(|_| WfError::bad_request("invalid cursor"))?;
    Ok((micros, id))
}

pub fn runs_list(query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    let p = parse_page(query, 50, 1000, true)?;
    let statuses: Option<Vec<String>> = match query_str(query, "status")? {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|s| {
                    let s = s.trim();
                    RunStatus::parse(s)
                        .map(|st| st.as_str().to_owned())
                        .ok_or_else(|| WfError::bad_request(format!("unknown status: {s}")))
                })
                .collect::<WfResult<_>>()?,
        ),
    };
    let workflow_name = query_str(query, "workflowName")?.map(str::to_owned);
    let deployment_id = query_str(query, "deploymentId")?.map(str::to_owned);
    let cursor = p.cursor.as_deref().map(run_cursor_in).transpose()?;
    with_app(|c, app| {
        // Only the statement's shape varies; every value is bound.
        let mut sql = format!("SELECT {RUN_COLS} FROM workflow.runs WHERE application_id = $1");
        let mut args: Vec<DatumWithOid<'_>> = vec![app.into()];
        if let Some(w) = &workflow_name {
            args.push(w.as_str().into());
            sql += &format!(" AND workflow_name = ${}", args.len());
        }
        if let Some(d) = &deployment_id {
            args.push(d.as_str().into());
            sql += &format!(" AND deployment_id = ${}", args.len());
        }
        if let Some(s) = &statuses {
            args.push(s.clone().into());
            sql += &format!(" AND status = ANY(${})", args.len());
        }
        let cmp = if p.descending { "<" } else { ">" };
        match &cursor {
            Some((at, Some(id))) => {
                args.push(ts_datum(*at).into());
                args.push(id.as_str().into());
                sql += &format!(" AND (created_at, run_id) {cmp} (${}, ${})", args.len() - 1, args.len());
            }
            Some((at, None)) => {
                args.push(ts_datum(*at).into());
                sql += &format!(" AND created_at {cmp} ${}", args.len());
            }
            None => {}
        }
        let dir = if p.descending { "DESC" } else { "ASC" };
        args.push((p.limit + 1).into());
        sql += &format!(" ORDER BY created_at {dir}, run_id {dir} LIMIT ${}", args.len());
        let rows: Vec<_> = db::select(c, &sql, &args).map(|r| run_from(&r)).collect();
        let (rows, more) = take_page(rows, p.limit);
        let next = rows.last().filter(|_| more).map(|r| run_cursor_out(r.created_at, &r.run_id));
        Ok(page(rows.iter().map(|r| render::run_json(r, o)).collect(), next, more))
    })
}

pub fn event_get(run_id: &str, event_id: &str, query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    with_app(|c, app| {
        let exists =
            db::exists(c, "SELECT 1 FROM workflow.runs WHERE application_id = $1 AND run_id = $2", &[app.into(), run_id.into()]);
        if !exists {
            return Err(not_found(Code::RunNotFound, "Run", run_id));
        }
        let missing = || not_found(Code::EventNotFound, "Event", event_id);
        let slot = ids::parse_event_id(event_id).ok_or_else(missing)?;
        let sql = format!("SELECT {EVENT_COLS} FROM workflow.events WHERE application_id = $1 AND run_id = $2 AND slot = $3");
        db::select(c, &sql, &[app.into(), run_id.into(), slot.into()])
            .next()
            .map(|r| render::event_json(&event_from(&r), o, true))
            .ok_or_else(missing)
    })
}

/// Empty pages echo the request cursor (events routes, http-api.md §4.3).
fn event_page(
    events: Vec<Value>,
    more: bool,
    cursor_of: impl Fn(&Value) -> Option<String>,
    request_cursor: &Option<String>,
) -> Value {
    let cursor = match events.last() {
        Some(last) => cursor_of(last),
        None => request_cursor.clone(),
    };
    page(events, cursor, more)
}

pub fn events_list(run_id: &str, query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    let p = parse_page(query, 100, 1000, false)?;
    let after = match &p.cursor {
        None => None,
        Some(s) => Some(ids::parse_event_id(s).ok_or_else(|| WfError::bad_request("invalid cursor"))?),
    };
    with_app(|c, app| {
        let (cmp, dir) = if p.descending { ("<", "DESC") } else { (">", "ASC") };
        let bound = after.unwrap_or(if p.descending { i64::MAX } else { 0 });
        let sql = format!(
            "SELECT {EVENT_COLS} FROM workflow.events WHERE application_id = $1 AND run_id = $2 AND slot {cmp} $3 ORDER BY slot {dir} LIMIT $4"
        );
        let rows: Vec<_> = db::select(c, &sql, &[app.into(), run_id.into(), bound.into(), (p.limit + 1).into()])
            .map(|r| event_from(&r))
            .collect();
        let (rows, more) = take_page(rows, p.limit);
        let data = rows.iter().map(|e| render::event_json(e, o, true)).collect();
        Ok(event_page(data, more, |e| e.get("eventId").and_then(Value::as_str).map(str::to_owned), &p.cursor))
    })
}

pub fn events_by_correlation(query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    let p = parse_page(query, 100, 1000, false)?;
    let correlation = match query_str(query, "correlationId")? {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => return Err(WfError::bad_request("correlationId is required")),
    };
    let run_id = query_str(query, "runId")?.map(str::to_owned);
    let after = decimal_cursor(&p.cursor)?;
    with_app(|c, app| {
        let (cmp, dir) = if p.descending { ("<", "DESC") } else { (">", "ASC") };
        let bound = after.unwrap_or(if p.descending { i64::MAX } else { 0 });
        let mut sql = format!(
            "SELECT {EVENT_COLS} FROM workflow.events WHERE application_id = $1 AND correlation_id = $2 AND seq {cmp} $3"
        );
        let mut args: Vec<DatumWithOid<'_>> = vec![app.into(), correlation.as_str().into(), bound.into(), (p.limit + 1).into()];
        if let Some(r) = &run_id {
            args.push(r.as_str().into());
            sql += " AND run_id = $5";
        }
        sql += &format!(" ORDER BY seq {dir} LIMIT $4");
        let rows: Vec<_> = db::select(c, &sql, &args).map(|r| event_from(&r)).collect();
        let (rows, more) = take_page(rows, p.limit);
        let last_seq = rows.last().map(|e| e.seq.to_string());
        let data: Vec<Value> = rows.iter().map(|e| render::event_json(e, o, true)).collect();
        Ok(event_page(data, more, |_| last_seq.clone(), &p.cursor))
    })
}

pub fn step_get(run_id: &str, step_id: &str, query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    with_app(|c, app| {
        let sql = format!("SELECT {STEP_COLS} FROM workflow.steps WHERE application_id = $1 AND run_id = $2 AND step_id = $3");
        db::select(c, &sql, &[app.into(), run_id.into(), step_id.into()])
            .next()
            .map(|r| render::step_json(&step_from(&r), o))
            .ok_or_else(|| not_found(Code::StepNotFound, "Step", step_id))
    })
}

pub fn steps_list(run_id: &str, query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    let p = parse_page(query, 100, 1000, false)?;
    let after = decimal_cursor(&p.cursor)?;
    with_app(|c, app| {
        let (cmp, dir) = if p.descending { ("<", "DESC") } else { (">", "ASC") };
        let bound = after.unwrap_or(if p.descending { i64::MAX } else { 0 });
        let sql = format!(
            "SELECT {STEP_COLS} FROM workflow.steps WHERE application_id = $1 AND run_id = $2 AND created_slot {cmp} $3 ORDER BY created_slot {dir} LIMIT $4"
        );
        let rows: Vec<_> = db::select(c, &sql, &[app.into(), run_id.into(), bound.into(), (p.limit + 1).into()])
            .map(|r| step_from(&r))
            .collect();
        let (rows, more) = take_page(rows, p.limit);
        let next = rows.last().filter(|_| more).map(|s| s.created_slot.to_string());
        Ok(page(rows.iter().map(|s| render::step_json(s, o)).collect(), next, more))
    })
}

pub fn hook_get(hook_id: &str, query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    let run_id = query_str(query, "runId")?.map(str::to_owned);
    with_app(|c, app| {
        // Without runId, correlation ids can repeat across runs: prefer a live hook, then the newest.
        let mut sql = format!("SELECT {HOOK_COLS} FROM workflow.hooks WHERE application_id = $1 AND hook_id = $2");
        let mut args: Vec<DatumWithOid<'_>> = vec![app.into(), hook_id.into()];
        if let Some(r) = &run_id {
            args.push(r.as_str().into());
            sql += " AND run_id = $3";
        }
        sql += " ORDER BY (status = 'disposed'), hook_seq DESC LIMIT 1";
        db::select(c, &sql, &args)
            .next()
            .map(|r| render::hook_json(&hook_from(&r).0, o))
            .ok_or_else(|| not_found(Code::HookNotFound, "Hook", hook_id))
    })
}

pub fn hook_get_by_token(token: &str, query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    with_app(|c, app| {
        let sql =
            format!("SELECT {HOOK_COLS} FROM workflow.hooks WHERE application_id = $1 AND token = $2 AND status <> 'disposed'");
        db::select(c, &sql, &[app.into(), token.into()])
            .next()
            .map(|r| render::hook_json(&hook_from(&r).0, o))
            .ok_or_else(|| not_found(Code::HookNotFound, "Hook", token))
    })
}

pub fn hooks_list(query: &Value) -> WfResult<Value> {
    let o = ReadOpts::from_query(query);
    let p = parse_page(query, 100, 1000, false)?;
    let after = decimal_cursor(&p.cursor)?;
    let run_id = query_str(query, "runId")?.map(str::to_owned);
    with_app(|c, app| {
        let (cmp, dir) = if p.descending { ("<", "DESC") } else { (">", "ASC") };
        let bound = after.unwrap_or(if p.descending { i64::MAX } else { 0 });
        let mut args: Vec<DatumWithOid<'_>> = vec![app.into(), bound.into(), (p.limit + 1).into()];
        // With runId: every hook of the run; without: the app's live hooks.
        let scope = match &run_id {
            Some(r) => {
                args.push(r.as_str().into());
                "run_id = $4"
            }
            None => "status <> 'disposed'",
        };
        let sql = format!(
            "SELECT {HOOK_COLS} FROM workflow.hooks WHERE application_id = $1 AND {scope} AND hook_seq {cmp} $2 ORDER BY hook_seq {dir} LIMIT $3"
        );
        let rows: Vec<_> = db::select(c, &sql, &args).map(|r| hook_from(&r)).collect();
        let (rows, more) = take_page(rows, p.limit);
        let next = rows.last().filter(|_| more).map(|(_, seq)| seq.to_string());
        Ok(page(rows.iter().map(|(h, _)| render::hook_json(h, o)).collect(), next, more))
    })
}
