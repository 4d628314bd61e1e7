use super::*;
use serde_json::json;

fn parse(path: &str, query: Value, body: Value) -> WfResult<CreateRequest> {
    parse_create(path, &query, &body)
}

fn error(path: &str, query: Value, body: Value) -> (u16, String) {
    match parse(path, query, body) {
        Err(e) => (e.code.status(), e.message),
        Ok(r) => panic!("expected an error, parsed {r:?}"),
    }
}

fn created(data: Value) -> Value {
    json!({"eventType": "run_created", "eventData": data})
}

#[test]
fn body_shape_errors() {
    assert_eq!(error("r", json!({}), json!([])), (400, "body must be a JSON object".into()));
    assert_eq!(error("r", json!({}), json!({})), (400, "eventType is required".into()));
    assert_eq!(error("r", json!({}), json!({"eventType": 5})), (400, "eventType must be a string".into()));
    assert_eq!(error("r", json!({}), json!({"eventType": "run_exploded"})), (400, "unknown event type: run_exploded".into()));
    assert_eq!(
        error("r", json!({}), json!({"eventType": "run_started", "eventData": []})),
        (400, "eventData must be an object".into())
    );
    assert_eq!(
        error("r", json!({}), json!({"eventType": "run_started", "specVersion": "6"})),
        (400, "specVersion must be an integer".into())
    );
    assert_eq!(
        error("r", json!({}), json!({"eventType": "run_started", "specVersion": 6.5})),
        (400, "specVersion must be an integer".into())
    );
}

#[test]
fn server_only_types_are_refused() {
    for t in ["hook_conflict", "noop"] {
        let e = parse("r", json!({}), json!({"eventType": t, "correlationId": "c"})).expect_err("refused");
        assert_eq!(e.code, Code::EventNotCreatable);
        assert_eq!(e.message, format!("event type {t} cannot be created by clients"));
    }
}

#[test]
fn path_null_is_only_for_run_created() {
    let r = parse("null", json!({}), created(json!({"deploymentId": "v1", "workflowName": "w"}))).expect("valid");
    assert_eq!(r.run_id, None);
    let e = parse("null", json!({}), json!({"eventType": "run_started"})).expect_err("404");
    assert_eq!(e.code, Code::RunNotFound);
    assert_eq!(error(&"r".repeat(257), json!({}), json!({"eventType": "run_started"})).0, 400);
}

#[test]
fn correlation_id_rules() {
    assert_eq!(EventType::ALL.iter().filter(|t| t.needs_correlation()).count(), 10);
    for t in EventType::ALL.iter().filter(|t| t.needs_correlation()).map(|t| t.as_str()) {
        let (status, msg) = error("r", json!({}), json!({"eventType": t}));
        assert_eq!((status, msg), (400, format!("correlationId is required for {t}")));
    }
    let long = "c".repeat(257);
    assert_eq!(error("r", json!({}), json!({"eventType": "run_started", "correlationId": long})).0, 400);
    assert!(parse("r", json!({}), json!({"eventType": "run_completed", "correlationId": "c".repeat(256)})).is_ok());
}

#[test]
fn run_created_requires_bootstrap_strings() {
    assert_eq!(
        error("null", json!({}), json!({"eventType": "run_created"})),
        (400, "eventData is required for run_created".into())
    );
    assert_eq!(
        error("null", json!({}), created(json!({"workflowName": "w"}))),
        (400, "eventData.deploymentId is required".into())
    );
    assert_eq!(
        error("null", json!({}), created(json!({"deploymentId": "v"}))),
        (400, "eventData.workflowName is required".into())
    );
    assert_eq!(
        error("null", json!({}), created(json!({"deploymentId": "", "workflowName": "w"}))),
        (400, "deploymentId must not be empty".into())
    );
    assert_eq!(
        error("null", json!({}), created(json!({"deploymentId": 1, "workflowName": "w"}))),
        (400, "deploymentId must be a string".into())
    );
    assert_eq!(
        error("null", json!({}), created(json!({"deploymentId": "v", "workflowName": "w", "executionContext": 1}))),
        (400, "executionContext must be an object".into())
    );
    let e = parse("null", json!({}), created(json!({"deploymentId": "v", "workflowName": "w", "attributes": {"$k": "v"}})))
        .expect_err("reserved");
    assert_eq!((e.code, e.message.as_str()), (Code::AttributeInvalid, "reserved attribute key: $k"));
    assert!(parse(
        "null",
        json!({}),
        created(json!({"deploymentId": "v", "workflowName": "w", "attributes": {"$k": "v"}, "allowReservedAttributes": true}))
    )
    .is_ok());
}

#[test]
fn per_type_field_validation() {
    let cases = [
        (
            json!({"eventType": "run_failed", "eventData": {"errorCode": "x".repeat(257)}}),
            "errorCode must be at most 256 characters",
        ),
        (
            json!({"eventType": "run_cancelled", "eventData": {"cancelReason": "x".repeat(513)}}),
            "cancelReason must be at most 512 characters",
        ),
        (
            json!({"eventType": "step_created", "correlationId": "s", "eventData": {}}),
            "eventData.stepName is required and must be a string",
        ),
        (
            json!({"eventType": "step_retrying", "correlationId": "s", "eventData": {"retryAfter": "soon"}}),
            "retryAfter must be an ISO-8601 date or epoch milliseconds",
        ),
        (json!({"eventType": "hook_created", "correlationId": "h", "eventData": {}}), "eventData.token is required"),
        (json!({"eventType": "hook_created", "correlationId": "h", "eventData": {"token": ""}}), "token must not be empty"),
        (
            json!({"eventType": "hook_created", "correlationId": "h", "eventData": {"token": "t".repeat(1025)}}),
            "token must be at most 1024 characters",
        ),
        (
            json!({"eventType": "hook_created", "correlationId": "h", "eventData": {"token": "t", "isWebhook": "yes"}}),
            "isWebhook must be a boolean",
        ),
        (
            json!({"eventType": "hook_created", "correlationId": "h", "eventData": {"token": "t", "ownerId": 3}}),
            "ownerId must be a string",
        ),
        (json!({"eventType": "wait_created", "correlationId": "w"}), "eventData.resumeAt is required"),
        (
            json!({"eventType": "wait_created", "correlationId": "w", "eventData": {"resumeAt": true}}),
            "resumeAt must be an ISO-8601 date or epoch milliseconds",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(error("r", json!({}), body), (400, want.to_owned()));
    }
    let e = parse("r", json!({}), json!({"eventType": "attr_set"})).expect_err("attr_set needs data");
    assert_eq!(e.code, Code::AttributeInvalid);
}

#[test]
fn event_count_must_be_a_safe_integer() {
    let body = json!({"eventType": "run_started"});
    assert_eq!(parse("r", json!({"eventCount": "12"}), body.clone()).map(|r| r.event_count).ok(), Some(Some(12)));
    assert_eq!(parse("r", json!({"eventCount": 12}), body.clone()).map(|r| r.event_count).ok(), Some(Some(12)));
    assert_eq!(
        parse("r", json!({"eventCount": "9007199254740991"}), body.clone()).map(|r| r.event_count).ok(),
        Some(Some(MAX_SAFE_INTEGER))
    );
    for bad in [json!("-1"), json!("1.5"), json!(""), json!("9007199254740992"), json!("12a"), json!(-3), json!(1.5), json!(true)]
    {
        assert_eq!(
            error("r", json!({"eventCount": bad}), body.clone()),
            (400, "eventCount must be a non-negative safe integer".into())
        );
    }
}

#[test]
fn payload_modes_and_lazy_detection() {
    let body = json!({"eventType": "step_started", "correlationId": "s", "eventData": {"stepName": "n", "input": {"__type": "Uint8Array", "data": "AAEC"}}});
    let r = parse("r", json!({"$payload": "envelope"}), body).expect("valid");
    assert_eq!(r.event_data.as_ref().map(|d| d["input"].clone()), Some(json!({"$bytes": "AAEC"})));
    assert!(matches!(r.body, Body::StepStarted { lazy: Some(_) }));
    let bare = parse("r", json!({}), json!({"eventType": "step_started", "correlationId": "s", "eventData": {"stepName": "n"}}))
        .expect("valid");
    assert!(matches!(bare.body, Body::StepStarted { lazy: None }));
    let null_input = parse(
        "r",
        json!({}),
        json!({"eventType": "step_started", "correlationId": "s", "eventData": {"stepName": "n", "input": null}}),
    )
    .expect("valid");
    assert!(matches!(null_input.body, Body::StepStarted { lazy: Some(_) }));
    let bad = parse(
        "r",
        json!({"$payload": "envelope"}),
        json!({"eventType": "run_completed", "eventData": {"output": {"__type": "Uint8Array", "data": 5}}}),
    );
    assert_eq!(bad.map_err(|e| e.code).err(), Some(Code::BadRequest));
}

#[test]
fn read_options() {
    assert_eq!(ReadOpts::from_query(&json!({})), ReadOpts::default());
    let o = ReadOpts::from_query(&json!({"resolveData": "none", "$payload": "envelope"}));
    assert!(o.resolve_none && o.mode == Mode::Envelope);
    assert!(!ReadOpts::from_query(&json!({"resolveData": "skip-step-inputs"})).resolve_none);
}

#[test]
fn pages() {
    assert_eq!(parse_page(&json!({}), 100, 1000, false).ok(), Some(Page { limit: 100, cursor: None, descending: false }));
    assert_eq!(
        parse_page(&json!({"limit": "5000", "sortOrder": "desc", "cursor": "x"}), 100, 1000, false).ok(),
        Some(Page { limit: 1000, cursor: Some("x".into()), descending: true })
    );
    for bad in [
        json!({"limit": "0"}),
        json!({"limit": "ten"}),
        json!({"limit": -1}),
        json!({"sortOrder": "up"}),
        json!({"sortOrder": 1}),
        json!({"cursor": 5}),
    ] {
        assert_eq!(parse_page(&bad, 100, 1000, false).map_err(|e| e.code).err(), Some(Code::BadRequest), "{bad}");
    }
    assert_eq!(decimal_cursor(&Some("42".into())).ok(), Some(Some(42)));
    assert!(decimal_cursor(&Some("4x".into())).is_err());
}
