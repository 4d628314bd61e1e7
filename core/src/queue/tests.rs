use super::*;
use serde_json::json;

#[test]
fn queue_names_classify_by_prefix_and_namespace() {
    assert_eq!(classify("__wkf_workflow_wf//x"), (QueueKind::Workflow, None));
    assert_eq!(classify("__wkf_step_s//y"), (QueueKind::Step, None));
    assert_eq!(classify("__acme2_wkf_workflow_w"), (QueueKind::Workflow, Some("acme2".into())));
    assert_eq!(classify("__acme_wkf_step_s"), (QueueKind::Step, Some("acme".into())));
    for other in
        ["emails", "__wkf_workflow_", "__Acme_wkf_workflow_w", "__1a_wkf_step_s", "__wkf_other_x", "_wkf_workflow_w", "__"]
    {
        assert_eq!(classify(other), (QueueKind::Other, None), "{other}");
    }
    assert_eq!(workflow_queue(Some("acme"), "wf"), "__acme_wkf_workflow_wf");
    assert_eq!(workflow_queue(None, "wf"), "__wkf_workflow_wf");
}

#[test]
fn retry_schedule_matches_the_table() {
    let waits: Vec<i64> = (1..=9).map(backoff_ms).collect();
    assert_eq!(waits, [2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]);
    assert_eq!(backoff_ms(0), 1000);
    assert_eq!(backoff_ms(i32::MAX), 60000);
}

#[test]
fn json_envelopes_validate_every_field() {
    let ok = parse_json(&json!({
        "queueName": "__wkf_workflow_w", "message": {"runId": "wrun_1", "stepId": "step_1"},
        "deploymentId": "v1", "idempotencyKey": "k", "delaySeconds": 2.5, "headers": {"x-trace": "t"}
    }))
    .expect("valid");
    assert_eq!(ok.facts, MessageFacts { run_id: "wrun_1".into(), step_id: Some("step_1".into()), health_check: false });
    assert_eq!((ok.deployment_id.as_str(), ok.idempotency_key.as_deref(), ok.delay_seconds), ("v1", Some("k"), 2.5));
    let facts =
        parse_json(&json!({"queueName": "q", "message": {"workflowRunId": "wrun_2", "__healthCheck": true}})).expect("ok").facts;
    assert_eq!((facts.run_id.as_str(), facts.health_check), ("wrun_2", true));

    let err = |body: Value| parse_json(&body).expect_err("invalid").message;
    assert_eq!(err(json!({"message": 1})), "queueName and message are required");
    assert_eq!(err(json!({"queueName": "q"})), "queueName and message are required");
    assert_eq!(err(json!({"queueName": "q", "message": null})), "queueName and message are required");
    assert!(err(json!({"queueName": 5, "message": 1})).contains("queueName"));
    assert!(err(json!({"queueName": "q".repeat(513), "message": 1})).contains("queueName"));
    assert!(err(json!({"queueName": "q", "message": 1, "delaySeconds": -1})).contains("delaySeconds"));
    assert!(err(json!({"queueName": "q", "message": 1, "delaySeconds": "5"})).contains("delaySeconds"));
    assert!(err(json!({"queueName": "q", "message": 1, "idempotencyKey": ""})).contains("idempotencyKey"));
    assert!(err(json!({"queueName": "q", "message": 1, "idempotencyKey": "k".repeat(1025)})).contains("idempotencyKey"));
    assert!(err(json!({"queueName": "q", "message": 1, "deploymentId": 3})).contains("deploymentId"));
    assert!(err(json!({"queueName": "q", "message": 1, "headers": {"bad name": "v"}})).contains("headers"));
    assert!(err(json!({"queueName": "q", "message": 1, "headers": {"x": 1}})).contains("headers"));
    assert!(err(json!([1])).contains("object"));
}

#[test]
fn cbor_envelopes_keep_the_message_bytes() {
    // {"queueName": "q", "message": tag 1 (epoch date) 5, "deploymentId": "v1"}
    let mut body = vec![0xa3, 0x69];
    body.extend(b"queueName");
    body.extend([0x61, b'q', 0x67]);
    body.extend(b"message");
    body.extend([0xc1, 0x05, 0x6c]);
    body.extend(b"deploymentId");
    body.extend([0x62, b'v', b'1']);
    let env = parse_cbor(&body).expect("valid");
    assert_eq!(env.body, Body::Cbor(vec![0xc1, 0x05]));
    assert_eq!(env.deployment_id, "v1");
    assert_eq!(parse_cbor(&[0xa0]).expect_err("empty").message, "queueName and message are required");
    assert!(parse_cbor(b"{\"json\":1}").expect_err("not cbor").message.starts_with("invalid CBOR body"));
}

#[test]
fn responses_classify_per_the_table() {
    let u = "http://user:pw@pod:3000/.well-known/workflow/v1/flow?x=1#f";
    assert_eq!(classify_response(200, b"", u), Outcome::Delivered);
    assert_eq!(classify_response(204, b"not json", u), Outcome::Delivered);
    assert_eq!(classify_response(200, br#"{"timeoutSeconds": 5}"#, u), Outcome::RescheduleAfter(5.0));
    assert_eq!(classify_response(200, br#"{"timeoutSeconds": -1}"#, u), Outcome::Delivered);
    assert_eq!(classify_response(200, br#"{"timeoutSeconds": "5"}"#, u), Outcome::Delivered);
    assert_eq!(
        classify_response(425, br#"{"meta": {"retryAfter": "2026-01-01T00:00:10.000Z"}}"#, u),
        Outcome::TooEarly(Some(1_767_225_610_000.0))
    );
    assert_eq!(classify_response(425, b"", u), Outcome::TooEarly(None));
    let Outcome::Failed(f) = classify_response(503, b"", u) else { panic!("503 is a failure") };
    assert_eq!(
        (f.code.as_str(), f.status_code, f.url.as_deref()),
        ("HTTP_503", Some(503), Some("http://pod:3000/.well-known/workflow/v1/flow"))
    );
    assert!(matches!(classify_response(302, b"", u), Outcome::Failed(_)));
    assert_eq!(too_early_delay_seconds(Some(10_500.0), 10_000.0), 1.0);
    assert_eq!(too_early_delay_seconds(Some(12_100.0), 10_000.0), 3.0);
    assert_eq!(too_early_delay_seconds(None, 10_000.0), 1.0);
}

#[test]
fn outcomes_round_trip_through_json() {
    let failed =
        Outcome::Failed(Failure { code: "ECONNREFUSED".into(), message: "refused".into(), status_code: None, url: None });
    for o in [Outcome::Delivered, Outcome::RescheduleAfter(0.0), Outcome::TooEarly(Some(5.0)), Outcome::TooEarly(None), failed] {
        assert_eq!(Outcome::from_json(&o.to_json()), Ok(o));
    }
    assert!(Outcome::from_json(&json!({"outcome": "maybe"})).is_err());
    assert!(Outcome::from_json(&json!({"outcome": "reschedule", "delaySeconds": -2})).is_err());
}

#[test]
fn endpoints_and_headers() {
    assert!(valid_endpoint("http://pod-1:3000/.well-known/workflow/v1/flow"));
    assert!(valid_endpoint("https://svc.ns.svc.cluster.local/x"));
    for bad in ["", "pod:3000/x", "ftp://x/y", "http://", "http:///x", "http://a b/", "http://:80/x"] {
        assert!(!valid_endpoint(bad), "{bad}");
    }
    assert!(forwardable_header("x-trace-id"));
    for h in ["Host", "content-type", "Content-Length", "connection", "Transfer-Encoding", "te", "Proxy-Authorization", "upgrade"]
    {
        assert!(!forwardable_header(h), "{h}");
    }
    assert_eq!(sanitize_url("https://a:b@h/p?q#f"), "https://h/p");
}

#[test]
fn dead_message_errors_follow_the_spec_version() {
    let Payload::Bytes(b) = delivery_error(6, "QueueDeliveryError", "handler answered HTTP 500", "HTTP_500") else {
        panic!("spec 6 uses devalue bytes")
    };
    assert_eq!(
        String::from_utf8(b).expect("ascii"),
        r#"devl[{"name":1,"message":2,"code":3},"QueueDeliveryError","handler answered HTTP 500","HTTP_500"]"#
    );
    assert_eq!(
        delivery_error(3, "QueueDeliveryError", "m", "c"),
        Payload::Json(json!({"name": "QueueDeliveryError", "message": "m", "code": "c"}))
    );
}
