use super::*;
use crate::queue::Failure;

fn held(kind: QueueKind, attempts: i32) -> Held {
    Held { kind, queue_name: "__wkf_step_s".into(), version: "v1".into(), attempts }
}

fn ctx(version_expired: bool) -> Context {
    Context { version_expired, now_ms: 1_000_000.0, now_iso: "2026-12-01T00:00:00.000Z".into() }
}

fn http_500() -> Failure {
    Failure {
        code: "HTTP_500".into(),
        message: "handler answered HTTP 500".into(),
        status_code: Some(500),
        url: Some("http://pod/x".into()),
    }
}

fn dead_code(c: &Change) -> (&str, i32, bool) {
    match c {
        Change::Dead { failure, attempts, finalize, detail } => {
            assert_eq!(detail["code"], failure.code.as_str());
            assert_eq!(detail["attempt"], *attempts);
            (failure.code.as_str(), *attempts, *finalize)
        }
        other => panic!("not dead: {other:?}"),
    }
}

#[test]
fn the_waiting_list_matches_the_states() {
    let listed: Vec<String> = WAITING.iter().map(|s| format!("'{}'", s.as_str())).collect();
    assert_eq!(waiting_states!(), listed.join(", "));
    let listed: Vec<String> = QUEUED.iter().map(|s| format!("'{}'", s.as_str())).collect();
    assert_eq!(queued_states!(), listed.join(", "));
}

#[test]
fn every_outcome_and_happening_plans_one_change() {
    let m = held(QueueKind::Step, 3);
    let live = ctx(false);
    assert_eq!(plan(&m, &Happening::Reported(Outcome::Delivered), &live), Change::Delivered);
    assert_eq!(plan(&m, &Happening::Reported(Outcome::RescheduleAfter(5.0)), &live), Change::DueIn { seconds: 5.0 });
    // A 425 waits at least a second, in whole seconds from now.
    assert_eq!(plan(&m, &Happening::Reported(Outcome::TooEarly(None)), &live), Change::DueIn { seconds: 1.0 });
    assert_eq!(plan(&m, &Happening::Reported(Outcome::TooEarly(Some(1_002_500.0))), &live), Change::DueIn { seconds: 3.0 });
    match plan(&m, &Happening::Reported(Outcome::Failed(http_500())), &live) {
        Change::Retry { attempts: 4, delay_ms: 16_000, detail } => {
            assert_eq!((detail["statusCode"].as_u64(), detail["attempt"].as_i64()), (Some(500), Some(4)));
            assert_eq!(detail["target"]["deploymentVersion"], "v1");
        }
        other => panic!("{other:?}"),
    }
    match plan(&m, &Happening::LeaseExpired, &live) {
        Change::Retry { attempts: 4, detail, .. } => assert_eq!(detail["code"], "LEASE_EXPIRED"),
        other => panic!("{other:?}"),
    }
    assert_eq!(dead_code(&plan(&m, &Happening::VersionExpired, &live)), ("VERSION_EXPIRED", 3, false));
    assert_eq!(dead_code(&plan(&m, &Happening::RunCancelled, &live)), ("RUN_CANCELLED", 3, false));
    let unroutable = plan(&m, &Happening::Unroutable { timeout_seconds: 300 }, &live);
    assert_eq!(dead_code(&unroutable), ("ROUTE_NOT_FOUND", 3, true));
    assert!(matches!(&unroutable, Change::Dead { failure, .. } if failure.message.contains("300 s")));
}

#[test]
fn the_tenth_failure_is_death_and_finalizes() {
    for attempts in 0..MAX_ATTEMPTS - 1 {
        assert!(matches!(
            plan(&held(QueueKind::Workflow, attempts), &Happening::LeaseExpired, &ctx(false)),
            Change::Retry { .. }
        ));
    }
    let last = held(QueueKind::Workflow, MAX_ATTEMPTS - 1);
    assert_eq!(dead_code(&plan(&last, &Happening::Reported(Outcome::Failed(http_500())), &ctx(false))), ("HTTP_500", 10, true));
    assert_eq!(dead_code(&plan(&last, &Happening::LeaseExpired, &ctx(false))), ("LEASE_EXPIRED", 10, true));
    // Attempts never overflow, whatever a row says.
    assert_eq!(dead_code(&plan(&held(QueueKind::Step, i32::MAX), &Happening::LeaseExpired, &ctx(false))).1, i32::MAX);
}

#[test]
fn an_expired_version_turns_a_reschedule_into_death() {
    let m = held(QueueKind::Workflow, 2);
    for outcome in [Outcome::RescheduleAfter(0.0), Outcome::TooEarly(None)] {
        assert_eq!(dead_code(&plan(&m, &Happening::Reported(outcome), &ctx(true))), ("VERSION_EXPIRED", 2, false));
    }
    // Only re-schedules consult it: a delivery still counts, a failure still retries.
    assert_eq!(plan(&m, &Happening::Reported(Outcome::Delivered), &ctx(true)), Change::Delivered);
    assert!(matches!(plan(&m, &Happening::LeaseExpired, &ctx(true)), Change::Retry { .. }));
}

#[test]
fn states_follow_the_change() {
    assert_eq!(Change::DueIn { seconds: 0.0 }.state(), MessageState::Pending);
    assert!(Change::DueIn { seconds: 0.0 }.due_now());
    assert_eq!(Change::DueIn { seconds: 0.5 }.state(), MessageState::Deferred);
    assert!(!Change::DueIn { seconds: 0.5 }.due_now());
    assert_eq!(Change::Delivered.state(), MessageState::Delivered);
    let retry = Change::Retry { attempts: 1, delay_ms: 2000, detail: Value::Null };
    assert_eq!(retry.state(), MessageState::Retrying);
    assert!(WAITING.contains(&retry.state()) && !WAITING.contains(&MessageState::Leased));
}

fn body(step_id: Option<&str>, message: Value) -> DeadBody {
    DeadBody { health_check: false, step_id: step_id.map(str::to_owned), namespace: None, cbor: false, message }
}

fn run(terminal: bool, spec_version: i32) -> RunSide {
    RunSide { terminal, spec_version, workflow_name: "workflow//./w//main".into() }
}

fn finality(kind: QueueKind, body: Option<DeadBody>, run: Option<RunSide>, step: Option<StepSide>) -> Finality {
    Finality { kind, run_id: Some("wrun_1".into()), body, run, step, may_start_run: true }
}

#[test]
fn a_dead_workflow_message_fails_its_run() {
    let f = Failure::decided("ROUTE_NOT_FOUND", "gone");
    let Finalization::Fail(writes) =
        finalize(&finality(QueueKind::Workflow, Some(body(None, json!({}))), Some(run(false, 3)), None), &f)
    else {
        panic!("should fail the run")
    };
    let [FinalWrite::Event(e)] = writes.as_slice() else { panic!("{writes:?}") };
    assert_eq!(e["eventType"], "run_failed");
    assert_eq!(e["eventData"]["errorCode"], "MAX_DELIVERIES_EXCEEDED");
    assert_eq!(e["eventData"]["error"], json!({"name": "QueueDeliveryError", "message": "gone", "code": "ROUTE_NOT_FOUND"}));
    // Spec 4 runs get devalue bytes.
    let Finalization::Fail(writes) =
        finalize(&finality(QueueKind::Workflow, Some(body(None, json!({}))), Some(run(false, 4)), None), &f)
    else {
        panic!()
    };
    let [FinalWrite::Event(e)] = writes.as_slice() else { panic!() };
    assert!(
        e["eventData"]["error"].is_object()
            && e["eventData"]["error"] != json!({"name": "QueueDeliveryError", "message": "gone", "code": "ROUTE_NOT_FOUND"})
    );
}

#[test]
fn a_dead_step_message_fails_a_live_step_and_replays_the_run() {
    let f = Failure::decided("HTTP_500", "boom");
    let live_step = Some(StepSide { name: "add".into(), terminal: false });
    let mut b = body(Some("step_1"), json!({}));
    b.namespace = Some("acme".into());
    b.cbor = true;
    let Finalization::Fail(writes) = finalize(&finality(QueueKind::Step, Some(b.clone()), Some(run(false, 3)), live_step), &f)
    else {
        panic!()
    };
    assert!(
        matches!(&writes[0], FinalWrite::Event(e) if e["eventType"] == "step_failed" && e["correlationId"] == "step_1" && e["eventData"]["stepName"] == "add")
    );
    assert_eq!(writes[1], FinalWrite::Continue { queue_name: "__acme_wkf_workflow_workflow//./w//main".into(), cbor: true });
    // A finished or missing step is not failed again, but the run still replays.
    for step in [Some(StepSide { name: "add".into(), terminal: true }), None] {
        let Finalization::Fail(writes) = finalize(&finality(QueueKind::Step, Some(b.clone()), Some(run(false, 3)), step), &f)
        else {
            panic!()
        };
        assert!(matches!(writes.as_slice(), [FinalWrite::Continue { .. }]));
    }
}

#[test]
fn nothing_to_fail_leaves_the_message_retryable() {
    let f = Failure::decided("X", "x");
    let live = || Some(run(false, 3));
    let plain = || Some(body(None, json!({})));
    assert_eq!(finalize(&finality(QueueKind::Other, plain(), live(), None), &f), Finalization::NotNeeded);
    assert_eq!(finalize(&finality(QueueKind::Workflow, None, live(), None), &f), Finalization::NotNeeded);
    assert_eq!(finalize(&finality(QueueKind::Workflow, plain(), Some(run(true, 3)), None), &f), Finalization::NotNeeded);
    assert_eq!(finalize(&finality(QueueKind::Step, plain(), None, None), &f), Finalization::NotNeeded);
    let mut health = body(None, json!({}));
    health.health_check = true;
    assert_eq!(finalize(&finality(QueueKind::Workflow, Some(health), live(), None), &f), Finalization::NotNeeded);
    let mut no_run = finality(QueueKind::Workflow, plain(), live(), None);
    no_run.run_id = None;
    assert_eq!(finalize(&no_run, &f), Finalization::NotNeeded);
}

#[test]
fn a_run_that_never_started_is_started_once_then_failed() {
    let f = Failure::decided("X", "x");
    let input = json!({"runInput": {"input": [], "deploymentId": "v1", "workflowName": "w"}});
    let mut missing = finality(QueueKind::Workflow, Some(body(None, input.clone())), None, None);
    assert_eq!(
        finalize(&missing, &f),
        Finalization::StartRun(json!({"eventType": "run_started", "eventData": input["runInput"]}))
    );
    // Asked again after the start: still missing means give up, present means fail it.
    missing.may_start_run = false;
    assert_eq!(finalize(&missing, &f), Finalization::NotNeeded);
    missing.run = Some(run(false, 3));
    assert!(matches!(finalize(&missing, &f), Finalization::Fail(_)));
    // Only workflow messages with an object input start runs.
    let step = finality(QueueKind::Step, Some(body(Some("s"), input)), None, None);
    assert_eq!(finalize(&step, &f), Finalization::NotNeeded);
    let odd = finality(QueueKind::Workflow, Some(body(None, json!({"runInput": [1]}))), None, None);
    assert_eq!(finalize(&odd, &f), Finalization::NotNeeded);
}
