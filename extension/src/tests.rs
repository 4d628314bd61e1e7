// In-backend behaviour that only a live backend can show: the install script's state, the error
// envelope becoming a real SQLSTATE, subtransaction rollback and slot allocation, the backend-only
// cross-app switch. Each test runs inside a transaction that pgrx rolls back.

use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

/// A fresh install holds no app: provision `default` and act for it.
fn as_default_app() {
    Spi::run(r#"SELECT workflow.app_provision('{"appId":"default"}')"#).expect("provisioning works");
    Spi::run("SET LOCAL workflow.app_id = 'default'").expect("SET LOCAL works");
}

fn jsonb(sql: &str) -> Value {
    Spi::get_one::<JsonB>(sql).expect("query runs").expect("query returns a row").0
}

fn create_run(id: &str) {
    let body = json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf"}});
    let out = jsonb(&format!("SELECT workflow.event_create('{id}', '{{}}', '{body}')"));
    assert_eq!(out["event"]["eventId"], "evnt_00000000000000000000000001");
}

#[pg_test]
fn a_fresh_install_holds_no_app_and_provisioning_makes_one_whole() {
    // Nothing for a restore's rows to collide with (logical backups).
    assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM workflow.applications"), Ok(Some(0)));
    as_default_app();
    let secret_len = Spi::get_one::<i32>(
        "SELECT length(s.secret) FROM workflow.app_secrets s JOIN workflow.applications a USING (application_id) WHERE a.label = 'default'",
    );
    assert_eq!(secret_len, Ok(Some(32)));
    let shards = Spi::get_one::<i64>(
        "SELECT count(*) FROM workflow.run_counters c JOIN workflow.applications a USING (application_id) WHERE a.label = 'default'",
    );
    assert_eq!(shards, Ok(Some(9)));
}

#[pg_test]
fn every_table_but_the_notify_gate_and_every_identity_counter_is_in_logical_backups() {
    let missing = Spi::get_one::<i64>(
        "SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'workflow'::regnamespace AND c.relkind IN ('r', 'S') \
           AND c.relname <> 'notify_gate' \
           AND c.oid <> ALL (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'pgworld')",
    );
    assert_eq!(missing, Ok(Some(0)));
}

#[pg_test]
fn internal_functions_return_the_error_envelope() {
    as_default_app();
    let out = jsonb(r#"SELECT workflow._event_create('wrun_missing', '{}', '{"eventType":"run_completed"}')"#);
    assert_eq!(out["$error"]["sqlstate"], "WF404");
    assert_eq!(out["$error"]["hint"], "WF_RUN_NOT_FOUND");
    assert_eq!(out["$error"]["message"], "Run wrun_missing not found");
}

#[pg_test]
fn public_functions_raise_the_wf_sqlstate() {
    as_default_app();
    // The handler only matches WF404; any other outcome escapes the block and fails the test.
    Spi::run(
        r#"DO $$ BEGIN
             PERFORM workflow.event_create('wrun_missing', '{}', '{"eventType":"run_completed"}');
             RAISE EXCEPTION 'expected WF404';
           EXCEPTION WHEN SQLSTATE 'WF404' THEN NULL;
           END $$"#,
    )
    .expect("WF404 raised and caught");
}

#[pg_test]
fn too_early_carries_retry_after_in_detail() {
    as_default_app();
    create_run("wrun_early");
    jsonb(r#"SELECT workflow.event_create('wrun_early', '{}', '{"eventType":"step_created","correlationId":"s","eventData":{"stepName":"n"}}')"#);
    jsonb(r#"SELECT workflow.event_create('wrun_early', '{}', '{"eventType":"step_retrying","correlationId":"s","eventData":{"retryAfter":"2999-01-01T00:00:00.000Z"}}')"#);
    let out = jsonb(r#"SELECT workflow._event_create('wrun_early', '{}', '{"eventType":"step_started","correlationId":"s"}')"#);
    assert_eq!(out["$error"]["sqlstate"], "WF425");
    assert_eq!(out["$error"]["detail"], r#"{"retryAfter":"2999-01-01T00:00:00.000Z"}"#);
}

#[pg_test]
fn a_rolled_back_create_burns_no_slot() {
    as_default_app();
    create_run("wrun_sub");
    // The subtransaction appends slot 2 and is rolled back; the next append must reuse slot 2.
    Spi::run(
        r#"DO $$ BEGIN
             BEGIN
               PERFORM workflow.event_create('wrun_sub', '{}', '{"eventType":"run_started"}');
               RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
             EXCEPTION WHEN SQLSTATE 'P0001' THEN NULL;
             END;
           END $$"#,
    )
    .expect("subtransaction rolled back");
    let out = jsonb(r#"SELECT workflow.event_create('wrun_sub', '{}', '{"eventType":"run_started"}')"#);
    assert_eq!(out["event"]["eventId"], "evnt_00000000000000000000000002");
}

#[pg_test]
fn slots_stay_dense_over_many_appends_in_one_transaction() {
    as_default_app();
    create_run("wrun_dense");
    for i in 0..50 {
        let body = json!({"eventType": "wait_created", "correlationId": format!("w{i}"), "eventData": {"resumeAt": 0}});
        jsonb(&format!("SELECT workflow.event_create('wrun_dense', '{{}}', '{body}')"));
    }
    let dense = Spi::get_one::<bool>(
        "SELECT array_agg(slot ORDER BY slot) = array(SELECT generate_series(1, 51)::bigint) FROM workflow.events WHERE run_id = 'wrun_dense'",
    );
    assert_eq!(dense, Ok(Some(true)));
    assert_eq!(Spi::get_one::<i64>("SELECT event_count FROM workflow.runs WHERE run_id = 'wrun_dense'"), Ok(Some(51)));
}

#[pg_test]
fn termination_disposes_hooks_completes_waits_and_releases_the_run_quota() {
    as_default_app();
    let active = || Spi::get_one::<i64>("SELECT sum(active)::bigint FROM workflow.run_counters").expect("sum").unwrap_or_default();
    let before = active();
    create_run("wrun_term");
    assert_eq!(active(), before + 1);
    jsonb(r#"SELECT workflow.event_create('wrun_term', '{}', '{"eventType":"hook_created","correlationId":"h","eventData":{"token":"tok"}}')"#);
    jsonb(r#"SELECT workflow.event_create('wrun_term', '{}', '{"eventType":"wait_created","correlationId":"w","eventData":{"resumeAt":0}}')"#);
    jsonb(r#"SELECT workflow.event_create('wrun_term', '{}', '{"eventType":"run_cancelled"}')"#);
    assert_eq!(Spi::get_one::<String>("SELECT status FROM workflow.hooks WHERE run_id = 'wrun_term'"), Ok(Some("disposed".into())));
    assert_eq!(Spi::get_one::<String>("SELECT status FROM workflow.waits WHERE run_id = 'wrun_term'"), Ok(Some("completed".into())));
    assert_eq!(active(), before);
    // The token is free again at once.
    create_run("wrun_term2");
    let out = jsonb(r#"SELECT workflow.event_create('wrun_term2', '{}', '{"eventType":"hook_created","correlationId":"h","eventData":{"token":"tok"}}')"#);
    assert_eq!(out["hook"]["status"], "pending");
}

#[pg_test]
fn cross_app_switch_is_off_outside_provisioning() {
    assert_eq!(Spi::get_one::<bool>("SELECT workflow._cross_app()"), Ok(Some(false)));
    let out = jsonb(r#"SELECT workflow.app_provision('{"appId":"second"}')"#);
    assert_eq!(out, json!({"appId": "second", "created": true}));
    assert_eq!(Spi::get_one::<bool>("SELECT workflow._cross_app()"), Ok(Some(false)));
    let again = jsonb(r#"SELECT workflow.app_provision('{"appId":"second"}')"#);
    assert_eq!(again["created"], false);
}

#[pg_test]
fn service_callers_need_an_app() {
    Spi::run("SET LOCAL workflow.app_id = ''").expect("SET LOCAL works");
    let out = jsonb(r#"SELECT workflow._runs_list('{}')"#);
    assert_eq!(out["$error"]["sqlstate"], "WF401");
    Spi::run("SET LOCAL workflow.app_id = 'nope'").expect("SET LOCAL works");
    let out = jsonb(r#"SELECT workflow._runs_list('{}')"#);
    assert_eq!((out["$error"]["sqlstate"].clone(), out["$error"]["message"].clone()), (json!("WF404"), json!("Application nope not found")));
    assert_eq!(Spi::get_one::<i32>("SELECT workflow.current_app_id()"), Ok(None));
}
