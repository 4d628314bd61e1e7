//! The transition matrix of spec/events.md §4–§7, one assertion per rule.

use super::*;
use crate::request::parse_create;
use serde_json::json;

const NOW: Micros = 1_800_000_000_000_000;

fn ctx() -> Ctx {
    Ctx { now: NOW, min_spec_version: 2, max_spec_version: 7, default_spec_version: 6, minted_run_id: "wrun_MINTED".into() }
}

fn req(body: Value) -> CreateRequest {
    req_q(json!({}), body)
}

fn req_q(query: Value, body: Value) -> CreateRequest {
    parse_create("wrun_1", &query, &body).expect("request shape is valid")
}

fn run(status: RunStatus) -> Run {
    Run {
        run_id: "wrun_1".into(),
        status,
        deployment_id: "v1".into(),
        workflow_name: "wf".into(),
        spec_version: 6,
        event_count: 3,
        execution_context: None,
        input: None,
        output: None,
        error: None,
        error_code: None,
        attributes: Map::new(),
        encryption_public_key: None,
        created_at: 0,
        updated_at: 0,
        started_at: None,
        completed_at: None,
        expired_at: None,
    }
}

fn step(status: StepStatus) -> Step {
    Step {
        run_id: "wrun_1".into(),
        step_id: "s".into(),
        step_name: "n".into(),
        status,
        attempt: 1,
        spec_version: 6,
        input: None,
        output: None,
        error: None,
        retry_after: None,
        created_slot: 2,
        created_at: 0,
        updated_at: 0,
        started_at: Some(0),
        completed_at: None,
    }
}

fn hook(status: HookStatus) -> Hook {
    Hook {
        run_id: "wrun_1".into(),
        hook_id: "h".into(),
        token: "tok".into(),
        status,
        owner_id: String::new(),
        project_id: String::new(),
        environment: String::new(),
        metadata: None,
        is_webhook: false,
        is_system: None,
        spec_version: 6,
        created_at: 0,
        received_at: None,
        disposed_at: None,
    }
}

fn wait(status: WaitStatus) -> Wait {
    Wait {
        run_id: "wrun_1".into(),
        wait_id: "w".into(),
        status,
        resume_at: Some(0),
        spec_version: 6,
        created_at: 0,
        updated_at: 0,
        completed_at: None,
    }
}

fn with_run(status: RunStatus) -> State {
    State { run: Some(run(status)), max_events_per_run: 25_000, ..State::default() }
}

fn no_run() -> State {
    State { max_events_per_run: 25_000, ..State::default() }
}

fn ok(r: &CreateRequest, s: &State) -> Plan {
    match plan(r, s, &ctx()) {
        Ok(p) => p,
        Err(e) => panic!("expected a plan, got {e}"),
    }
}

fn fails(r: &CreateRequest, s: &State) -> (u16, Code, String) {
    match plan(r, s, &ctx()) {
        Err(e) => (e.code.status(), e.code, e.message),
        Ok(p) => panic!("expected an error, got {p:?}"),
    }
}

fn types(p: &Plan) -> Vec<&'static str> {
    p.events.iter().map(|e| e.event_type.as_str()).collect()
}

const TERMINAL: [RunStatus; 4] = [RunStatus::Completed, RunStatus::Failed, RunStatus::Cancelled, RunStatus::Expired];
const LIVE: [RunStatus; 2] = [RunStatus::Pending, RunStatus::Running];

fn created_body() -> Value {
    json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf", "input": {"a": 1}}})
}

#[test]
fn run_created_inserts_a_pending_run_at_slot_one() {
    let p = ok(&req(created_body()), &no_run());
    let RunWrite::Insert(r) = &p.run else { panic!("expected an insert") };
    assert_eq!((r.status, r.spec_version, r.event_count), (RunStatus::Pending, 6, 0));
    assert_eq!(types(&p), ["run_created"]);
    assert_eq!(p.events[0].event_data.as_ref().map(|d| d["input"].clone()), Some(json!({"a": 1})));
    assert!(p.new_active_run && !p.terminated && p.reply.run && p.reply.max_events);
    assert_eq!(p.run_after.event_count, 1);
}

#[test]
fn run_created_with_null_path_uses_the_minted_id() {
    let r = parse_create("null", &json!({}), &created_body()).expect("valid");
    assert_eq!(ok(&r, &no_run()).run_id, "wrun_MINTED");
}

#[test]
fn run_created_errors() {
    assert_eq!(fails(&req(created_body()), &with_run(RunStatus::Pending)).1, Code::RunExists);
    let expired = State { version_expired: true, ..no_run() };
    assert_eq!(fails(&req(created_body()), &expired), (410, Code::VersionExpired, "Deployment version v1 is expired".into()));
    let mut b = created_body();
    b["specVersion"] = json!(8);
    assert_eq!(
        fails(&req(b.clone()), &no_run()),
        (400, Code::SpecUnsupported, "specVersion 8 is not supported (accepted: 2..7)".into())
    );
    b["specVersion"] = json!(1);
    assert_eq!(fails(&req(b), &no_run()).1, Code::SpecUnsupported);
    let attrs = json!({"eventType": "run_created", "specVersion": 3, "eventData": {"deploymentId": "v1", "workflowName": "wf", "attributes": {"k": "v"}}});
    assert_eq!(
        fails(&req(attrs), &no_run()),
        (400, Code::SpecUnsupported, "initial attributes require specVersion 4 or newer".into())
    );
}

#[test]
fn run_started_moves_pending_to_running_without_bootstrap_fields() {
    let body =
        json!({"eventType": "run_started", "eventData": {"input": 1, "deploymentId": "v1", "workflowName": "wf", "note": "x"}});
    let p = ok(&req(body), &with_run(RunStatus::Pending));
    let RunWrite::Update(r) = &p.run else { panic!("expected an update") };
    assert_eq!((r.status, r.started_at), (RunStatus::Running, Some(NOW)));
    assert_eq!(p.events[0].event_data, Some(json!({"note": "x"}).as_object().cloned().unwrap_or_default()));
    let bare = ok(&req(json!({"eventType": "run_started"})), &with_run(RunStatus::Pending));
    assert_eq!(bare.events[0].event_data, None);
}

#[test]
fn run_started_on_running_is_an_idempotent_no_op() {
    let p = ok(&req(json!({"eventType": "run_started"})), &with_run(RunStatus::Running));
    assert!(p.events.is_empty() && p.run == RunWrite::None && p.reply.event == ReplyEvent::Null && p.reply.run);
}

#[test]
fn run_started_on_terminal_or_missing_runs() {
    for st in TERMINAL {
        // A late message for a finished run: the run comes back unchanged, with no event.
        let p = ok(&req(json!({"eventType": "run_started"})), &with_run(st));
        assert!(p.events.is_empty() && p.run == RunWrite::None && !p.terminated, "{st:?}");
        assert!(p.reply.event == ReplyEvent::Null && p.reply.run && p.run_after.status == st, "{st:?}");
    }
    assert_eq!(
        fails(&req(json!({"eventType": "run_started"})), &no_run()),
        (404, Code::RunNotFound, "Run wrun_1 not found".into())
    );
    let half = json!({"eventType": "run_started", "eventData": {"deploymentId": "v1"}});
    assert_eq!(fails(&req(half), &no_run()).1, Code::RunNotFound);
}

#[test]
fn resilient_run_started_creates_the_run_with_a_synthetic_run_created() {
    let body = json!({"eventType": "run_started", "eventData": {"deploymentId": "v1", "workflowName": "wf", "input": "x", "ownerMessageId": "m"}});
    let p = ok(&req(body.clone()), &no_run());
    let RunWrite::Insert(r) = &p.run else { panic!("expected an insert") };
    assert_eq!((r.status, r.started_at), (RunStatus::Running, Some(NOW)));
    assert_eq!(types(&p), ["run_created", "run_started"]);
    assert_eq!(p.events[0].event_data, json!({"deploymentId": "v1", "workflowName": "wf", "input": "x"}).as_object().cloned());
    assert_eq!(p.events[1].event_data, json!({"ownerMessageId": "m"}).as_object().cloned());
    assert_eq!(p.reply.event, ReplyEvent::Appended(1));
    assert!(p.new_active_run);
    let expired = State { version_expired: true, ..no_run() };
    assert_eq!(fails(&req(body), &expired).1, Code::VersionExpired);
}

#[test]
fn terminal_run_events_from_live_runs() {
    for st in LIVE {
        for (t, to) in [
            ("run_completed", RunStatus::Completed),
            ("run_failed", RunStatus::Failed),
            ("run_cancelled", RunStatus::Cancelled),
            ("run_expired", RunStatus::Expired),
        ] {
            let p = ok(
                &req(json!({"eventType": t, "eventData": {"output": 1, "error": "e", "errorCode": "USER_ERROR"}})),
                &with_run(st),
            );
            let RunWrite::Update(r) = &p.run else { panic!("expected an update") };
            assert_eq!((r.status, r.completed_at), (to, Some(NOW)), "{t}");
            assert!(p.terminated, "{t} terminates");
            match to {
                RunStatus::Completed => assert_eq!(r.output, Some(json!(1))),
                RunStatus::Failed => {
                    assert_eq!((r.error.clone(), r.error_code.as_deref()), (Some(json!("e")), Some("USER_ERROR")))
                }
                RunStatus::Expired => assert_eq!(r.expired_at, Some(NOW)),
                _ => {}
            }
        }
    }
}

#[test]
fn terminal_run_events_on_terminal_runs() {
    for st in TERMINAL {
        for t in ["run_completed", "run_failed", "run_expired"] {
            let (status, code, msg) = fails(&req(json!({"eventType": t})), &with_run(st));
            assert_eq!((status, code), (409, Code::RunTerminal), "{t} on {st:?}");
            assert_eq!(msg, format!("Run wrun_1 is in terminal state: {}", st.as_str()));
        }
    }
    let again = ok(&req(json!({"eventType": "run_cancelled"})), &with_run(RunStatus::Cancelled));
    assert!(again.run == RunWrite::None && !again.terminated && types(&again) == ["run_cancelled"]);
    for st in [RunStatus::Completed, RunStatus::Failed, RunStatus::Expired] {
        assert_eq!(fails(&req(json!({"eventType": "run_cancelled"})), &with_run(st)).1, Code::RunTerminal);
    }
}

fn attr_body(corr: Option<&str>) -> Value {
    let mut b =
        json!({"eventType": "attr_set", "eventData": {"changes": [{"key": "k", "value": "v"}], "writer": {"type": "workflow"}}});
    if let Some(c) = corr {
        b["correlationId"] = json!(c);
    }
    b
}

#[test]
fn attr_set_rules() {
    let p = ok(&req(attr_body(Some("a1"))), &with_run(RunStatus::Running));
    let RunWrite::Update(r) = &p.run else { panic!("expected an update") };
    assert_eq!(r.attributes.get("k"), Some(&json!("v")));
    assert!(p.reply.run && !p.reply.max_events);
    let mut old = with_run(RunStatus::Running);
    if let Some(r) = old.run.as_mut() {
        r.spec_version = 3;
    }
    assert_eq!(
        fails(&req(attr_body(None)), &old),
        (400, Code::SpecUnsupported, "attributes require specVersion 4 or newer".into())
    );
    let mut spec3 = attr_body(None);
    spec3["specVersion"] = json!(3);
    assert_eq!(fails(&req(spec3), &with_run(RunStatus::Running)).1, Code::SpecUnsupported);
    assert_eq!(fails(&req(attr_body(None)), &with_run(RunStatus::Completed)).1, Code::RunTerminal);
    let taken = State { attr_correlation_taken: true, ..with_run(RunStatus::Running) };
    assert_eq!(
        fails(&req(attr_body(Some("a1"))), &taken),
        (409, Code::AttrDuplicate, "Attributes for correlation a1 already set".into())
    );
    let mut full = with_run(RunStatus::Running);
    if let Some(r) = full.run.as_mut() {
        r.attributes = (0..64).map(|i| (format!("k{i}"), json!("v"))).collect();
    }
    assert_eq!(fails(&req(attr_body(None)), &full).1, Code::AttributeInvalid);
}

#[test]
fn step_created_rules() {
    let body = json!({"eventType": "step_created", "correlationId": "s", "eventData": {"stepName": "n", "input": [1]}});
    let p = ok(&req(body.clone()), &with_run(RunStatus::Running));
    let ChildWrite::Step(Write::Insert(s)) = &p.child else { panic!("expected a step insert") };
    assert_eq!((s.status, s.attempt, s.created_slot, s.input.clone()), (StepStatus::Pending, 0, 4, Some(json!([1]))));
    assert!(p.reply.step && !p.reply.run);
    for st in TERMINAL {
        assert_eq!(fails(&req(body.clone()), &with_run(st)).1, Code::RunTerminal);
    }
    let exists = State { step: Some(step(StepStatus::Pending)), ..with_run(RunStatus::Running) };
    assert_eq!(fails(&req(body), &exists), (409, Code::StepExists, "Step s already exists".into()));
}

fn lazy_body() -> Value {
    json!({"eventType": "step_started", "correlationId": "s", "eventData": {"stepName": "n", "input": null, "workflowName": "wf", "attempt": 1}})
}

#[test]
fn lazy_step_started_creates_the_step_once() {
    let p = ok(&req(lazy_body()), &with_run(RunStatus::Running));
    assert_eq!(types(&p), ["step_created", "step_started"]);
    assert_eq!(p.events[0].event_data, json!({"stepName": "n", "input": null, "workflowName": "wf"}).as_object().cloned());
    assert_eq!(p.events[1].event_data, json!({"stepName": "n", "workflowName": "wf", "attempt": 1}).as_object().cloned());
    let ChildWrite::Step(Write::Insert(s)) = &p.child else { panic!("expected a step insert") };
    assert_eq!((s.status, s.attempt, s.created_slot), (StepStatus::Running, 1, 4));
    assert!(p.reply.step_created && p.reply.event == ReplyEvent::Appended(1));
    let loser = State { step: Some(step(StepStatus::Running)), ..with_run(RunStatus::Running) };
    assert_eq!(fails(&req(lazy_body()), &loser).1, Code::StepExists);
    assert_eq!(fails(&req(lazy_body()), &with_run(RunStatus::Failed)).1, Code::RunTerminal);
}

fn started() -> Value {
    json!({"eventType": "step_started", "correlationId": "s", "eventData": {"ownerMessageId": "m"}})
}

fn with_step(run_status: RunStatus, s: Step) -> State {
    State { step: Some(s), ..with_run(run_status) }
}

#[test]
fn bare_step_started_rules() {
    assert_eq!(fails(&req(started()), &with_run(RunStatus::Running)), (404, Code::StepNotFound, "Step s not found".into()));
    for st in [StepStatus::Completed, StepStatus::Failed, StepStatus::Cancelled] {
        let (status, code, msg) = fails(&req(started()), &with_step(RunStatus::Running, step(st)));
        assert_eq!((status, code, msg), (409, Code::StepTerminal, format!("Step s is in terminal state: {}", st.as_str())));
    }
    assert_eq!(fails(&req(started()), &with_step(RunStatus::Cancelled, step(StepStatus::Running))).1, Code::RunExpired);
    let mut later = step(StepStatus::Pending);
    later.retry_after = Some(NOW + 5_000_000);
    let e = plan(&req(started()), &with_step(RunStatus::Running, later), &ctx()).expect_err("too early");
    assert_eq!((e.code, e.meta), (Code::TooEarly, Some(json!({"retryAfter": crate::ts::to_iso(NOW + 5_000_000)}))));
    let mut due = step(StepStatus::Pending);
    due.retry_after = Some(NOW);
    let p = ok(&req(started()), &with_step(RunStatus::Running, due));
    let ChildWrite::Step(Write::Update(s)) = &p.child else { panic!("expected a step update") };
    assert_eq!((s.status, s.attempt, s.retry_after), (StepStatus::Running, 2, None));
    // A redelivery re-executing a running step counts another attempt.
    let again = ok(&req(started()), &with_step(RunStatus::Running, step(StepStatus::Running)));
    let ChildWrite::Step(Write::Update(s)) = &again.child else { panic!("expected a step update") };
    assert_eq!(s.attempt, 2);
}

#[test]
fn step_outcomes() {
    let completed = json!({"eventType": "step_completed", "correlationId": "s", "eventData": {"result": 7}});
    let failed = json!({"eventType": "step_failed", "correlationId": "s", "eventData": {"error": "boom"}});
    let retrying = json!({"eventType": "step_retrying", "correlationId": "s", "eventData": {"error": "again", "retryAfter": "2027-01-15T08:00:00.000Z"}});
    let cases = [(completed, StepStatus::Completed), (failed, StepStatus::Failed), (retrying, StepStatus::Pending)];
    for (body, to) in &cases {
        let p = ok(&req(body.clone()), &with_step(RunStatus::Running, step(StepStatus::Running)));
        let ChildWrite::Step(Write::Update(s)) = &p.child else { panic!("expected a step update") };
        assert_eq!(s.status, *to);
        assert_eq!(fails(&req(body.clone()), &with_run(RunStatus::Running)).1, Code::StepNotFound);
        assert_eq!(fails(&req(body.clone()), &with_step(RunStatus::Running, step(StepStatus::Completed))).1, Code::StepTerminal);
        // A terminal run still lets a running step record its outcome, but nothing else.
        assert!(plan(&req(body.clone()), &with_step(RunStatus::Cancelled, step(StepStatus::Running)), &ctx()).is_ok());
        assert_eq!(fails(&req(body.clone()), &with_step(RunStatus::Cancelled, step(StepStatus::Pending))).1, Code::RunExpired);
    }
    let p = ok(&req(cases[0].0.clone()), &with_step(RunStatus::Running, step(StepStatus::Running)));
    let ChildWrite::Step(Write::Update(s)) = &p.child else { panic!("expected a step update") };
    assert_eq!((s.output.clone(), s.completed_at), (Some(json!(7)), Some(NOW)));
    let r = ok(&req(cases[2].0.clone()), &with_step(RunStatus::Running, step(StepStatus::Running)));
    let ChildWrite::Step(Write::Update(s)) = &r.child else { panic!("expected a step update") };
    assert_eq!((s.error.clone(), s.completed_at), (Some(json!("again")), None));
    assert!(s.retry_after.is_some());
}

fn hook_body() -> Value {
    json!({"eventType": "hook_created", "correlationId": "h", "eventData": {"token": "tok", "metadata": {"m": 1}, "isWebhook": true}})
}

#[test]
fn hook_created_rules() {
    let p = ok(&req(hook_body()), &with_run(RunStatus::Running));
    let ChildWrite::Hook(Write::Insert(h)) = &p.child else { panic!("expected a hook insert") };
    assert_eq!((h.status, h.is_webhook, h.owner_id.as_str()), (HookStatus::Pending, true, ""));
    assert_eq!(fails(&req(hook_body()), &with_run(RunStatus::Completed)).1, Code::RunTerminal);
    let exists = State { hook: Some(hook(HookStatus::Disposed)), ..with_run(RunStatus::Running) };
    assert_eq!(fails(&req(hook_body()), &exists), (409, Code::HookExists, "Hook h already exists".into()));
}

#[test]
fn hook_token_conflict_records_a_hook_conflict_event() {
    let held = State { token_holder: Some("wrun_other".into()), ..with_run(RunStatus::Running) };
    let p = ok(&req(hook_body()), &held);
    assert_eq!(types(&p), ["hook_conflict"]);
    assert_eq!(p.events[0].event_data, json!({"token": "tok", "conflictingRunId": "wrun_other"}).as_object().cloned());
    assert!(p.child == ChildWrite::None && !p.reply.hook);
}

#[test]
fn hook_received_rules() {
    let body = json!({"eventType": "hook_received", "correlationId": "h", "eventData": {"payload": 1}});
    assert_eq!(fails(&req(body.clone()), &with_run(RunStatus::Running)).1, Code::HookNotFound);
    let disposed = State { hook: Some(hook(HookStatus::Disposed)), ..with_run(RunStatus::Running) };
    assert_eq!(fails(&req(body.clone()), &disposed), (404, Code::HookNotFound, "Hook h not found".into()));
    let live = State { hook: Some(hook(HookStatus::Received)), ..with_run(RunStatus::Running) };
    let p = ok(&req(body.clone()), &live);
    let ChildWrite::Hook(Write::Update(h)) = &p.child else { panic!("expected a hook update") };
    assert_eq!((h.status, h.received_at), (HookStatus::Received, Some(NOW)));

    let q = json!({"resumeId": "r1", "resumePayloadDigest": "d1"});
    let prior = Event {
        run_id: "wrun_1".into(),
        slot: 3,
        seq: 3,
        event_type: "hook_received".into(),
        correlation_id: Some("h".into()),
        event_data: None,
        spec_version: 6,
        created_at: 0,
        resume_id: Some("r1".into()),
        resume_digest: Some("d1".into()),
    };
    let replay = State { prior_resume: Some(prior.clone()), ..live.clone() };
    let same = ok(&req_q(q.clone(), body.clone()), &replay);
    assert!(same.events.is_empty() && matches!(same.reply.event, ReplyEvent::Existing(_)));
    let other = req_q(json!({"resumeId": "r1", "resumePayloadDigest": "d2"}), body.clone());
    assert_eq!(fails(&other, &replay), (409, Code::ResumeConflict, "Resume r1 was recorded with a different payload".into()));
    let fresh = ok(&req_q(q, body), &live);
    assert_eq!((fresh.events[0].resume_id.as_deref(), fresh.events[0].resume_digest.as_deref()), (Some("r1"), Some("d1")));
}

#[test]
fn hook_disposed_rules() {
    let body = json!({"eventType": "hook_disposed", "correlationId": "h"});
    assert_eq!(fails(&req(body.clone()), &with_run(RunStatus::Running)).1, Code::HookNotFound);
    let disposed = State { hook: Some(hook(HookStatus::Disposed)), ..with_run(RunStatus::Running) };
    assert_eq!(fails(&req(body.clone()), &disposed), (409, Code::HookDisposed, "Hook h is already disposed".into()));
    let live = State { hook: Some(hook(HookStatus::Pending)), ..with_run(RunStatus::Running) };
    let p = ok(&req(body), &live);
    let ChildWrite::Hook(Write::Update(h)) = &p.child else { panic!("expected a hook update") };
    assert_eq!((h.status, h.disposed_at), (HookStatus::Disposed, Some(NOW)));
}

#[test]
fn wait_rules() {
    let created = json!({"eventType": "wait_created", "correlationId": "w", "eventData": {"resumeAt": 1_800_000_060_000_i64}});
    let p = ok(&req(created.clone()), &with_run(RunStatus::Running));
    let ChildWrite::Wait(Write::Insert(w)) = &p.child else { panic!("expected a wait insert") };
    assert_eq!((w.status, w.resume_at), (WaitStatus::Waiting, Some(1_800_000_060_000_000)));
    assert_eq!(fails(&req(created.clone()), &with_run(RunStatus::Failed)).1, Code::RunTerminal);
    let exists = State { wait: Some(wait(WaitStatus::Waiting)), ..with_run(RunStatus::Running) };
    assert_eq!(fails(&req(created), &exists), (409, Code::WaitExists, "Wait w already exists".into()));

    let done = json!({"eventType": "wait_completed", "correlationId": "w"});
    assert_eq!(fails(&req(done.clone()), &with_run(RunStatus::Running)), (404, Code::WaitNotFound, "Wait w not found".into()));
    let completed = State { wait: Some(wait(WaitStatus::Completed)), ..with_run(RunStatus::Running) };
    assert_eq!(fails(&req(done.clone()), &completed), (409, Code::WaitCompleted, "Wait w already completed".into()));
    let p = ok(&req(done), &exists);
    let ChildWrite::Wait(Write::Update(w)) = &p.child else { panic!("expected a wait update") };
    assert_eq!((w.status, w.completed_at), (WaitStatus::Completed, Some(NOW)));
}

#[test]
fn every_child_event_on_a_missing_run_is_404() {
    for body in [
        json!({"eventType": "step_created", "correlationId": "s", "eventData": {"stepName": "n"}}),
        started(),
        hook_body(),
        json!({"eventType": "wait_completed", "correlationId": "w"}),
        json!({"eventType": "run_completed"}),
        attr_body(None),
    ] {
        assert_eq!(fails(&req(body), &no_run()).1, Code::RunNotFound);
    }
}

#[test]
fn event_quota_counts_what_a_create_would_append() {
    let at = |count: i64| {
        let mut s = with_run(RunStatus::Running);
        s.max_events_per_run = 10;
        if let Some(r) = s.run.as_mut() {
            r.event_count = count;
        }
        s
    };
    let sc = json!({"eventType": "step_created", "correlationId": "s", "eventData": {"stepName": "n"}});
    assert!(plan(&req(sc.clone()), &at(9), &ctx()).is_ok());
    assert_eq!(fails(&req(sc), &at(10)), (429, Code::EventQuota, "Event quota exceeded for this run".into()));
    // A lazy start appends two events.
    assert_eq!(fails(&req(lazy_body()), &at(9)).1, Code::EventQuota);
    // Terminal run events are exempt so a run at its cap can still finish.
    assert!(plan(&req(json!({"eventType": "run_completed"})), &at(10), &ctx()).is_ok());
    assert!(plan(&req(json!({"eventType": "run_cancelled"})), &at(12), &ctx()).is_ok());
    // Writing nothing never hits the quota.
    let mut idle = at(10);
    if let Some(r) = idle.run.as_mut() {
        r.status = RunStatus::Running;
    }
    assert!(plan(&req(json!({"eventType": "run_started"})), &idle, &ctx()).is_ok());
}

#[test]
fn lookups_name_only_what_the_rules_read() {
    assert_eq!(
        lookups(&req(hook_body())),
        Lookups { child: Some(ChildKind::Hook), token: Some("tok".into()), ..Lookups::default() }
    );
    assert_eq!(lookups(&req(created_body())).version.as_deref(), Some("v1"));
    assert!(lookups(&req(json!({"eventType": "run_completed"}))).run_payloads);
    assert!(!lookups(&req(started())).run_payloads);
    assert_eq!(lookups(&req(attr_body(Some("a")))).attr_correlation.as_deref(), Some("a"));
}

/// A small deterministic generator (xorshift), so the test needs no extra crates and repeats.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    /// Any known type, or one of the names clients must not or cannot send.
    fn event_type(&mut self) -> &'static str {
        let n = EventType::ALL.len() as u64 + 2;
        match self.next() % n {
            i if (i as usize) < EventType::ALL.len() => EventType::ALL[i as usize].as_str(),
            i if i == n - 2 => "noop",
            _ => "",
        }
    }

    fn value(&mut self, depth: u32) -> Value {
        const KEYS: [&str; 16] = [
            "eventType",
            "correlationId",
            "eventData",
            "specVersion",
            "stepName",
            "input",
            "token",
            "resumeAt",
            "retryAfter",
            "deploymentId",
            "workflowName",
            "attributes",
            "changes",
            "writer",
            "key",
            "value",
        ];
        match self.next() % if depth > 3 { 6 } else { 8 } {
            0 => Value::Null,
            1 => Value::Bool(self.next().is_multiple_of(2)),
            2 => json!((self.next() % 2000) as i64 - 1000),
            3 => json!(f64::from((self.next() % 1000) as u32) / 7.0),
            4 => json!(self.event_type()),
            5 => json!("x".repeat((self.next() % 300) as usize)),
            6 => Value::Array((0..self.next() % 4).map(|_| self.value(depth + 1)).collect()),
            _ => {
                let mut m = Map::new();
                for _ in 0..self.next() % 6 {
                    let k = self.pick(&KEYS).to_owned();
                    let v = if k == "eventType" { json!(self.event_type()) } else { self.value(depth + 1) };
                    m.insert(k, v);
                }
                Value::Object(m)
            }
        }
    }
}

/// Whatever a caller sends, the rules answer with a plan or a typed error: never a panic, which
/// the extension would surface as an internal error.
#[test]
fn arbitrary_requests_never_panic() {
    let mut g = Gen(0x5eed_1234_abcd_0001);
    let states = [no_run(), with_run(RunStatus::Running), with_step(RunStatus::Completed, step(StepStatus::Running))];
    for i in 0..20_000_u32 {
        let mut body = g.value(0);
        if i.is_multiple_of(2) {
            if let Value::Object(m) = &mut body {
                m.insert(
                    "eventType".into(),
                    json!(g.pick(&["run_created", "run_started", "step_started", "hook_created", "attr_set"])),
                );
            }
        }
        let query = if i.is_multiple_of(3) {
            json!({"eventCount": g.value(2), "$payload": "envelope", "resumeId": g.value(3)})
        } else {
            json!({})
        };
        let path = if i.is_multiple_of(5) { "null" } else { "wrun_1" };
        if let Ok(r) = parse_create(path, &query, &body) {
            drop(lookups(&r));
            for s in &states {
                // Either outcome is fine; reaching here without a panic is the property.
                drop(plan(&r, s, &ctx()));
            }
        }
    }
}
