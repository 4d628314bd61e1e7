//! The queue through its SQL functions, as the dispatcher and apps call them (spec/queue.md,
//! lifecycle.md): several real sessions for claims, leases and idempotency races. Time is moved by
//! rewriting stored due times, never by sleeping through a schedule.

use anyhow::{anyhow, ensure, Result};
use base64::{engine::general_purpose::STANDARD, Engine};
use pgworld_it::{call, create_run, enqueue, event_create, msg_num, register, TestDb, WfErr};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use tokio_postgres::Client;
/// A lease id as the claim returns it (a uuid, read as text).
type Lease = String;

fn endpoints() -> Value {
    json!({"workflow": "http://pod-1:3000/flow", "step": "http://pod-1:3000/step", "webhook": "http://pod-1:3000/hook"})
}

async fn claim(c: &Client, max: i32, lease_seconds: f64) -> Result<Vec<(Lease, i64, i32, Option<String>)>> {
    let rows = c
        .query("SELECT lease_id::text, id, attempts, url FROM workflow.dispatch_claim('it', $1, $2)", &[&max, &lease_seconds])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}

async fn complete(c: &Client, lease: &str, outcome: Value) -> Result<bool> {
    Ok(c.query_one("SELECT workflow.dispatch_complete($1::text::uuid, $2)", &[&lease, &outcome]).await?.get(0))
}

async fn state(su: &Client, id: i64) -> Result<(String, i32, f64, bool)> {
    let r = su
        .query_one(
            "SELECT state, attempts, extract(epoch FROM available_at - updated_at)::float8, failure_finalized_at IS NOT NULL \
             FROM workflow.messages WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok((r.get(0), r.get(1), r.get(2), r.get(3)))
}

fn failed(code: &str) -> Value {
    json!({"outcome": "failed", "code": code, "message": "handler answered HTTP 500", "statusCode": 500, "url": "http://pod-1:3000/flow"})
}

async fn started_run(c: &Client, run_id: &str) -> Result<()> {
    create_run(c, run_id).await?;
    event_create(c, run_id, json!({}), json!({"eventType": "run_started"})).await?.map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

async fn version_status(c: &Client) -> Result<Value> {
    call(c, "SELECT workflow.version_status('v1')", &[]).await?.map_err(|e| anyhow!("{e:?}"))
}

async fn pods(su: &Client) -> Result<Vec<String>> {
    let rows = su.query("SELECT pod_id FROM workflow.handlers ORDER BY pod_id", &[]).await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

#[tokio::test]
async fn enqueue_answers_and_validates() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let now = enqueue(&c, json!({"queueName": "__wkf_workflow_w", "message": {"runId": "wrun_1"}, "deploymentId": "v1"})).await?;
    let now = now.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(now["messageId"].as_str().is_some_and(|s| s.starts_with("msg_")) && now.get("scheduled").is_none(), "{now}");
    let later = enqueue(&c, json!({"queueName": "q", "message": 1, "delaySeconds": 30})).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(later["scheduled"] == json!(true) && later["deliverAt"].is_string(), "{later}");

    let su = db.superuser().await?;
    let rows = su.query("SELECT state, kind, run_id, deployment_version FROM workflow.messages ORDER BY id", &[]).await?;
    let got: Vec<(String, String, String, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    ensure!(got[0] == ("pending".into(), "workflow".into(), "wrun_1".into(), "v1".into()), "{got:?}");
    ensure!(got[1].0 == "deferred" && got[1].1 == "other", "{got:?}");

    for (bad, want) in [
        (json!({"message": 1}), "queueName and message are required"),
        (json!({"queueName": "q", "message": 1, "delaySeconds": -1}), "delaySeconds"),
        (json!({"queueName": "q", "message": 1, "idempotencyKey": 7}), "idempotencyKey"),
    ] {
        let e = enqueue(&c, bad).await?.err().ok_or_else(|| anyhow!("accepted an invalid envelope"))?;
        ensure!(e.sqlstate == "WF400" && e.message.contains(want), "{e:?}");
    }
    Ok(())
}

#[tokio::test]
async fn cbor_messages_are_stored_byte_exact() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    // {"queueName": "__wkf_step_s", "message": {"runId": "wrun_c", "data": tag 64 h'00ff', "f": 1.5 as float32}}
    let message: Vec<u8> = [
        &[0xa3, 0x65][..],
        b"runId",
        &[0x66],
        b"wrun_c",
        &[0x64],
        b"data",
        &[0xd8, 0x40, 0x42, 0x00, 0xff, 0x61, b'f', 0xfa, 0x3f, 0xc0, 0x00, 0x00],
    ]
    .concat();
    let body = pgworld_it::cbor_envelope("__wkf_step_s", &message, None);
    let out = call(&c, "SELECT workflow.queue_enqueue_cbor('{}', $1)", &[&body]).await?.map_err(|e| anyhow!("{e:?}"))?;
    let id = msg_num(out["messageId"].as_str().unwrap_or_default());
    let su = db.superuser().await?;
    let stored: Vec<u8> = su.query_one("SELECT body_cbor FROM workflow.message_bodies WHERE id = $1", &[&id]).await?.get(0);
    ensure!(stored == message, "the message item is kept byte for byte");
    let run: String = su.query_one("SELECT run_id FROM workflow.messages WHERE id = $1", &[&id]).await?.get(0);
    ensure!(run == "wrun_c");
    let bad = call(&c, "SELECT workflow.queue_enqueue_cbor('{}', $1)", &[&vec![0x82u8, 1, 2]]).await?;
    ensure!(matches!(bad, Err(WfErr { ref sqlstate, .. }) if sqlstate == "WF400"), "{bad:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_duplicate_idempotency_key_gets_409() -> Result<()> {
    let db = TestDb::new().await?;
    db.provision("other").await?;
    let first = db.session("default").await?;
    let second = db.session("default").await?;
    let env = json!({"queueName": "q", "message": {"n": 1}, "idempotencyKey": "order-7"});
    first.batch_execute("BEGIN").await?;
    enqueue(&first, env.clone()).await?.map_err(|e| anyhow!("{e:?}"))?;
    // The second insert waits on the first's uncommitted key, then sees it committed.
    let racing =
        tokio::spawn(
            async move { enqueue(&second, json!({"queueName": "q2", "message": 2, "idempotencyKey": "order-7"})).await },
        );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    ensure!(!racing.is_finished(), "the duplicate waits for the first transaction");
    first.batch_execute("COMMIT").await?;
    let e = racing.await??.err().ok_or_else(|| anyhow!("duplicate accepted"))?;
    ensure!(e.sqlstate == "WF409" && e.message == "Idempotency key order-7 already processed", "{e:?}");
    // Keys are per app.
    let other = db.session("other").await?;
    enqueue(&other, env).await?.map_err(|e| anyhow!("another app's key collided: {e:?}"))?;
    Ok(())
}

#[tokio::test]
async fn the_rate_quota_counts_accepted_enqueues_per_minute() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    c.batch_execute("SET workflow.admin = on").await?;
    call(&c, "SELECT workflow.quotas_put($1)", &[&json!({"maxQueuePerMinute": 5})]).await?.map_err(|e| anyhow!("{e:?}"))?;
    // A minute boundary inside the loop would reset the window: retry the check once if so.
    for _ in 0..2 {
        let minute: f64 =
            c.query_one("SELECT extract(epoch FROM date_trunc('minute', clock_timestamp()))::float8", &[]).await?.get(0);
        let su = db.superuser().await?;
        su.batch_execute("DELETE FROM workflow.queue_rate").await?;
        let mut outcomes = Vec::new();
        for i in 0..7 {
            outcomes.push(enqueue(&c, json!({"queueName": "q", "message": i})).await?);
        }
        let after: f64 =
            c.query_one("SELECT extract(epoch FROM date_trunc('minute', clock_timestamp()))::float8", &[]).await?.get(0);
        if after != minute {
            continue;
        }
        ensure!(outcomes[..5].iter().all(Result::is_ok), "five accepted: {outcomes:?}");
        for o in &outcomes[5..] {
            let e = o.clone().err().ok_or_else(|| anyhow!("sixth accepted"))?;
            ensure!(e.sqlstate == "WF429" && e.message == "Queue rate limit exceeded" && e.code == "WF_QUEUE_RATE", "{e:?}");
        }
        // Rejected calls did not count: exactly five in the window.
        let counted: i64 = su.query_one("SELECT sum(accepted)::bigint FROM workflow.queue_rate", &[]).await?.get(0);
        ensure!(counted == 5, "counted {counted}");
        // pgworld's own messages are not counted: quotas are for clients.
        return Ok(());
    }
    Err(anyhow!("two minute boundaries in a row"))
}

/// Many enqueues in one transaction (a trigger on a bulk insert) count one by one against the
/// quota, and a rolled-back transaction counts none; two sessions share the window.
#[tokio::test]
async fn the_rate_quota_counts_inside_one_transaction_and_across_sessions() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let other = db.session("default").await?;
    c.batch_execute("SET workflow.admin = on").await?;
    call(&c, "SELECT workflow.quotas_put($1)", &[&json!({"maxQueuePerMinute": 300})]).await?.map_err(|e| anyhow!("{e:?}"))?;
    let batch = |n: i64| {
        format!(
            "SELECT count(workflow.queue_enqueue('{{}}', jsonb_build_object('queueName', 'q', 'message', g))) \
             FROM generate_series(1, {n}) g"
        )
    };
    for _ in 0..2 {
        let start: f64 =
            c.query_one("SELECT extract(epoch FROM date_trunc('minute', clock_timestamp()))::float8", &[]).await?.get(0);
        db.superuser().await?.batch_execute("DELETE FROM workflow.queue_rate").await?;
        c.batch_execute("BEGIN").await?;
        c.batch_execute(&batch(250)).await?;
        c.batch_execute("ROLLBACK").await?;
        c.batch_execute(&batch(200)).await?;
        other.batch_execute(&batch(100)).await?;
        let over = other.batch_execute(&batch(1)).await.err().and_then(|e| e.as_db_error().map(|d| d.code().code().to_owned()));
        let end: f64 =
            c.query_one("SELECT extract(epoch FROM date_trunc('minute', clock_timestamp()))::float8", &[]).await?.get(0);
        if end != start {
            continue;
        }
        ensure!(over.as_deref() == Some("WF429"), "the 301st enqueue of the minute is refused: {over:?}");
        let counted: i64 =
            db.superuser().await?.query_one("SELECT sum(accepted)::bigint FROM workflow.queue_rate", &[]).await?.get(0);
        ensure!(counted == 300, "counted {counted}");
        return Ok(());
    }
    Err(anyhow!("two minute boundaries in a row"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_skip_locked_rows_and_route_by_version() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    for i in 0..40 {
        let version = if i % 4 == 0 { "v2" } else { "v1" };
        enqueue(&c, json!({"queueName": "__wkf_workflow_w", "message": {"i": i}, "deploymentId": version}))
            .await?
            .map_err(|e| anyhow!("{e:?}"))?;
    }
    let a = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let b = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    a.batch_execute("BEGIN").await?;
    b.batch_execute("BEGIN").await?;
    let first = claim(&a, 20, 60.0).await?;
    let second = claim(&b, 20, 60.0).await?;
    let ids_a: BTreeSet<i64> = first.iter().map(|r| r.1).collect();
    let ids_b: BTreeSet<i64> = second.iter().map(|r| r.1).collect();
    ensure!(ids_a.len() == 20 && ids_b.len() == 10, "30 v1 messages split: {} + {}", ids_a.len(), ids_b.len());
    ensure!(ids_a.is_disjoint(&ids_b), "no message claimed twice");
    ensure!(first.iter().chain(&second).all(|r| r.3.as_deref() == Some("http://pod-1:3000/flow")), "workflow URL of v1");
    a.batch_execute("COMMIT").await?;
    b.batch_execute("COMMIT").await?;
    let su = db.superuser().await?;
    let v2_waiting: i64 = su
        .query_one("SELECT count(*) FROM workflow.messages WHERE deployment_version = 'v2' AND state = 'pending'", &[])
        .await?
        .get(0);
    ensure!(v2_waiting == 10, "v2 messages wait for a v2 handler instead of being dropped");
    register(&c, "pod-2", "v2", endpoints()).await?;
    ensure!(claim(&a, 100, 60.0).await?.len() == 10, "a v2 handler makes them claimable");
    Ok(())
}

#[tokio::test]
async fn failures_follow_the_retry_schedule_and_the_tenth_kills_and_fails_the_run() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    started_run(&c, "wrun_doomed").await?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    let out =
        enqueue(&c, json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_doomed"}, "deploymentId": "v1"})).await?;
    let id = msg_num(out.map_err(|e| anyhow!("{e:?}"))?["messageId"].as_str().unwrap_or_default());
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let su = db.superuser().await?;
    let mut waits = Vec::new();
    for failure in 1..=10 {
        let claimed = claim(&d, 10, 60.0).await?;
        ensure!(claimed.len() == 1 && claimed[0].2 == failure - 1, "attempt {} claimed: {claimed:?}", failure - 1);
        ensure!(complete(&d, &claimed[0].0, failed("HTTP_500")).await?, "outcome recorded");
        ensure!(!complete(&d, &claimed[0].0, failed("HTTP_500")).await?, "a spent lease records nothing");
        let (st, attempts, wait, finalized) = state(&su, id).await?;
        ensure!(attempts == failure, "attempts {attempts} after failure {failure}");
        if failure < 10 {
            ensure!(st == "retrying" && !finalized, "{st}");
            waits.push(wait.round() as i64);
            pgworld_it::advance_to_due(&su, id).await?;
        } else {
            ensure!(st == "dead" && finalized, "10th failure: {st}, finalized {finalized}");
        }
    }
    ensure!(waits == [2, 4, 8, 16, 32, 60, 60, 60, 60], "retry waits {waits:?}");

    let run = call(&c, "SELECT workflow.run_get('wrun_doomed', '{\"$payload\":\"envelope\"}')", &[])
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    ensure!(run["status"] == "failed" && run["errorCode"] == "MAX_DELIVERIES_EXCEEDED", "{run}");
    let data = run["error"]["data"].as_str().unwrap_or_default().to_owned();
    let devl = String::from_utf8(STANDARD.decode(&data)?).unwrap_or_default();
    ensure!(devl.starts_with("devl[") && devl.contains("QueueDeliveryError") && devl.contains("HTTP_500"), "{devl}");
    let events = call(&c, "SELECT workflow.events_list('wrun_doomed', '{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    let last = events["data"].as_array().and_then(|a| a.last()).cloned().unwrap_or_default();
    ensure!(last["eventType"] == "run_failed" && last["eventData"]["errorCode"] == "MAX_DELIVERIES_EXCEEDED", "{last}");

    let dead = call(&c, "SELECT workflow.dead_letters_list('{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    let item = &dead["data"][0];
    ensure!(item["messageId"] == format!("msg_{id}") && item["attempts"] == 10, "{item}");
    ensure!(
        item["lastFailure"]["code"] == "HTTP_500" && item["lastFailure"]["target"]["url"] == "http://pod-1:3000/flow",
        "{item}"
    );
    ensure!(item["failureFinalizedAt"].is_string() && item["payload"] == json!({"runId": "wrun_doomed"}), "{item}");
    let again = call(&c, "SELECT workflow.dead_letter_retry($1)", &[&format!("msg_{id}")]).await?;
    ensure!(matches!(&again, Err(e) if e.sqlstate == "WF409"), "a finalized dead letter is not retried: {again:?}");
    Ok(())
}

#[tokio::test]
async fn a_dead_step_message_fails_its_step_and_continues_the_run() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    started_run(&c, "wrun_step").await?;
    event_create(
        &c,
        "wrun_step",
        json!({}),
        json!({"eventType": "step_created", "correlationId": "step_1", "eventData": {"stepName": "charge", "input": []}}),
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    enqueue(&c, json!({"queueName": "__acme_wkf_workflow_wf", "message": {"runId": "wrun_step", "stepId": "step_1"}, "deploymentId": "v1"}))
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let su = db.superuser().await?;
    // Nine failures already happened: the next one is the tenth.
    su.batch_execute("UPDATE workflow.messages SET attempts = 9").await?;
    let claimed = claim(&d, 1, 60.0).await?;
    complete(&d, &claimed[0].0, failed("ECONNREFUSED")).await?;
    let step = call(&c, "SELECT workflow.step_get('wrun_step', 'step_1', '{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(step["status"] == "failed", "{step}");
    let run = call(&c, "SELECT workflow.run_get('wrun_step', '{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(run["status"] == "running", "the run lives on to observe the failure: {run}");
    let next = su
        .query_one("SELECT m.queue_name, m.state, b.body_json FROM workflow.messages m JOIN workflow.message_bodies b USING (id) ORDER BY id DESC LIMIT 1", &[])
        .await?;
    let (queue, st, body): (String, String, Value) = (next.get(0), next.get(1), next.get(2));
    ensure!(queue == "__acme_wkf_workflow_wf" && st == "pending" && body == json!({"runId": "wrun_step"}), "{queue} {st} {body}");
    Ok(())
}

#[tokio::test]
async fn webhook_dead_letters_can_be_retried_and_reschedules_keep_the_id() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    let out = enqueue(&c, json!({"queueName": "emails", "message": {"to": "a@b"}, "deploymentId": "v1"})).await?;
    let id = msg_num(out.map_err(|e| anyhow!("{e:?}"))?["messageId"].as_str().unwrap_or_default());
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let su = db.superuser().await?;

    let lease = claim(&d, 1, 60.0).await?.remove(0);
    ensure!(lease.3.as_deref() == Some("http://pod-1:3000/hook"), "other kinds go to the webhook URL");
    complete(&d, &lease.0, json!({"outcome": "reschedule", "delaySeconds": 30})).await?;
    let (st, attempts, wait, _) = state(&su, id).await?;
    ensure!(st == "deferred" && attempts == 0 && (wait - 30.0).abs() < 0.01, "{st} {attempts} {wait}");
    pgworld_it::advance_to_due(&su, id).await?;
    let lease = claim(&d, 1, 60.0).await?.remove(0);
    ensure!(lease.1 == id, "the same message, same id");
    let in_ten = su.query_one("SELECT (extract(epoch FROM now()) * 1000 + 10400)::float8", &[]).await?.get::<_, f64>(0);
    complete(&d, &lease.0, json!({"outcome": "too_early", "retryAfterMs": in_ten})).await?;
    let (st, attempts, wait, _) = state(&su, id).await?;
    ensure!(st == "deferred" && attempts == 0 && (wait - 11.0).abs() < 0.01, "425 waits whole seconds: {st} {wait}");

    su.batch_execute("UPDATE workflow.messages SET attempts = 9").await?;
    pgworld_it::advance_to_due(&su, id).await?;
    let lease = claim(&d, 1, 60.0).await?.remove(0);
    complete(&d, &lease.0, failed("HTTP_503")).await?;
    let (st, _, _, finalized) = state(&su, id).await?;
    ensure!(st == "dead" && !finalized, "a webhook message touches no run, so it stays retryable");
    let retried = call(&c, "SELECT workflow.dead_letter_retry($1)", &[&id.to_string()]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(retried == json!({"retried": true, "messageId": format!("msg_{id}")}), "{retried}");
    let (st, attempts, _, _) = state(&su, id).await?;
    ensure!(st == "pending" && attempts == 0, "{st} {attempts}");
    for (bad, want) in [("msg_x", "WF400"), ("msg_999999", "WF404"), (&*format!("msg_{id}"), "WF409")] {
        let r = call(&c, "SELECT workflow.dead_letter_retry($1)", &[&bad]).await?;
        ensure!(matches!(&r, Err(e) if e.sqlstate == want), "{bad}: {r:?}");
    }
    Ok(())
}

#[tokio::test]
async fn expired_leases_count_as_failures_and_renewals_keep_them() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    for i in 0..2 {
        enqueue(&c, json!({"queueName": "q", "message": i, "deploymentId": "v1"})).await?.map_err(|e| anyhow!("{e:?}"))?;
    }
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let claimed = claim(&d, 2, 0.3).await?;
    let kept = claimed[0].0.clone();
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let renewed: i64 = d.query_one("SELECT workflow.dispatch_renew(ARRAY[$1::text::uuid], 60)", &[&kept]).await?.get(0);
    ensure!(renewed == 1);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    // The next claim sweeps the expired lease first.
    ensure!(claim(&d, 10, 60.0).await?.is_empty(), "the expired message waits out its backoff");
    let su = db.superuser().await?;
    let (st, attempts, wait, _) = state(&su, claimed[1].1).await?;
    ensure!(st == "retrying" && attempts == 1 && wait.round() == 2.0, "{st} {attempts} {wait}");
    let code: String =
        su.query_one("SELECT last_failure->>'code' FROM workflow.message_bodies WHERE id = $1", &[&claimed[1].1]).await?.get(0);
    ensure!(code == "LEASE_EXPIRED");
    ensure!(!complete(&d, &claimed[1].0, json!({"outcome": "delivered"})).await?, "the expired lease's outcome is ignored");
    ensure!(complete(&d, &kept, json!({"outcome": "delivered"})).await?, "the renewed lease still holds");
    Ok(())
}

#[tokio::test]
async fn draining_counts_follow_live_work_and_force_expire_clears_it() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    c.batch_execute("SET workflow.admin = on").await?;
    for run in ["wrun_a", "wrun_b"] {
        started_run(&c, run).await?;
    }
    event_create(
        &c,
        "wrun_a",
        json!({}),
        json!({"eventType": "hook_created", "correlationId": "h1", "eventData": {"token": "tok"}}),
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    event_create(
        &c,
        "wrun_b",
        json!({}),
        json!({"eventType": "wait_created", "correlationId": "w1", "eventData": {"resumeAt": 4102444800000i64}}),
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    enqueue(&c, json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_a"}, "deploymentId": "v1"}))
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    let s = version_status(&c).await?;
    ensure!(
        s == json!({"activeRuns": 2, "pendingHooks": 1, "pendingWaits": 1, "queuedMessages": 1, "drained": false, "status": "active"}),
        "{s}"
    );

    // wrun_b finishes: its wait is completed by termination.
    event_create(&c, "wrun_b", json!({}), json!({"eventType": "run_completed", "eventData": {"output": 1}}))
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    let s = version_status(&c).await?;
    ensure!(s["activeRuns"] == 1 && s["pendingWaits"] == 0 && s["drained"] == false, "{s}");

    call(
        &c,
        "SELECT workflow.version_notify($1)",
        &[&json!({"applicationId": "default", "deploymentVersion": "v1", "status": "draining"})],
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    ensure!(version_status(&c).await?["status"] == "draining");
    let expired = call(&c, "SELECT workflow.version_expire('v1')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(
        expired
            == json!({"cancelledRuns": 1, "deadLetteredMessages": 1, "disposedHooks": 1, "completedWaits": 0, "deregisteredHandlers": 1}),
        "{expired}"
    );
    let s = version_status(&c).await?;
    ensure!(
        s == json!({"activeRuns": 0, "pendingHooks": 0, "pendingWaits": 0, "queuedMessages": 0, "drained": true, "status": "expired"}),
        "{s}"
    );
    let again = call(&c, "SELECT workflow.version_expire('v1')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(again["cancelledRuns"] == 0 && again["deadLetteredMessages"] == 0, "repeating returns zeros: {again}");

    let events = call(&c, "SELECT workflow.events_list('wrun_a', '{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    let last = events["data"].as_array().and_then(|a| a.last()).cloned().unwrap_or_default();
    ensure!(
        last["eventType"] == "run_cancelled" && last["eventData"]["cancelReason"] == "deployment version v1 expired",
        "{last}"
    );
    let dl = call(&c, "SELECT workflow.dead_letters_list('{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(dl["data"][0]["lastFailure"]["code"] == "VERSION_EXPIRED" && dl["data"][0]["failureFinalizedAt"].is_null(), "{dl}");

    let e = enqueue(&c, json!({"queueName": "q", "message": 1, "deploymentId": "v1"})).await?.err();
    ensure!(e.as_ref().is_some_and(|e| e.sqlstate == "WF410"), "{e:?}");
    let body = json!({"podId": "pod-9", "deploymentVersion": "v1", "endpoints": endpoints()});
    let e = call(&c, "SELECT workflow.handler_register($1)", &[&body]).await?.err();
    ensure!(e.as_ref().is_some_and(|e| e.sqlstate == "WF410"), "{e:?}");
    let e = call(
        &c,
        "SELECT workflow.version_notify($1)",
        &[&json!({"applicationId": "default", "deploymentVersion": "v1", "status": "active"})],
    )
    .await?
    .err();
    ensure!(e.as_ref().is_some_and(|e| e.sqlstate == "WF409" && e.code == "WF_VERSION_EXPIRED"), "{e:?}");
    let e = call(
        &c,
        "SELECT workflow.version_notify($1)",
        &[&json!({"applicationId": "nope", "deploymentVersion": "v1", "status": "active"})],
    )
    .await?
    .err();
    ensure!(e.as_ref().is_some_and(|e| e.sqlstate == "WF404"), "{e:?}");
    let r = event_create(
        &c,
        "wrun_new",
        json!({}),
        json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf"}}),
    )
    .await?;
    ensure!(matches!(&r, Err(e) if e.sqlstate == "WF410"), "no new runs on an expired version: {r:?}");
    Ok(())
}

#[tokio::test]
async fn service_scoped_registrations_replace_pods_of_their_version() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    register(&c, "pod-2", "v1", endpoints()).await?;
    let svc = json!({"podId": "svc", "deploymentVersion": "v1", "serviceScoped": true,
                     "endpoints": {"workflow": "http://svc/flow", "step": "http://svc/step", "webhook": "http://svc/hook"}});
    call(&c, "SELECT workflow.handler_register($1)", &[&svc]).await?.map_err(|e| anyhow!("{e:?}"))?;
    let su = db.superuser().await?;
    ensure!(pods(&su).await? == ["svc"], "the service registration represents the version");
    let late = json!({"machineId": "pod-3", "deploymentVersion": "v1", "endpoints": endpoints()});
    let r = call(&c, "SELECT workflow.handler_register($1)", &[&late]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(r == json!({"registered": true}) && pods(&su).await? == ["svc"], "a pod registration is ignored but answered 201");
    for (bad, want) in [
        (
            json!({"deploymentVersion": "v1", "endpoints": endpoints()}),
            "podId (or machineId), deploymentVersion, and endpoints are required",
        ),
        (
            json!({"podId": "p", "deploymentVersion": "v1", "endpoints": {"workflow": "http://a/x", "step": "nope", "webhook": "http://a/y"}}),
            "endpoint URL is invalid: step",
        ),
    ] {
        let e = call(&c, "SELECT workflow.handler_register($1)", &[&bad]).await?.err();
        ensure!(e.as_ref().is_some_and(|e| e.sqlstate == "WF400" && e.message == want), "{e:?}");
    }
    let r = call(&c, "SELECT workflow.handler_deregister('svc')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(r == json!({"deregistered": true}) && pods(&su).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn maintenance_reaps_orphans_and_kills_long_unroutable_messages() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    started_run(&c, "wrun_orphan").await?;
    started_run(&c, "wrun_sleeping").await?;
    event_create(
        &c,
        "wrun_sleeping",
        json!({}),
        json!({"eventType": "wait_created", "correlationId": "w", "eventData": {"resumeAt": 4102444800000i64}}),
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    let out = enqueue(&c, json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_lost"}, "deploymentId": "v-gone"}))
        .await?;
    let id = msg_num(out.map_err(|e| anyhow!("{e:?}"))?["messageId"].as_str().unwrap_or_default());
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let su = db.superuser().await?;
    // Twenty minutes pass for the runs.
    su.batch_execute(
        "UPDATE workflow.runs SET updated_at = updated_at - interval '20 minutes'; \
         UPDATE workflow.events SET created_at = created_at - interval '20 minutes'",
    )
    .await?;
    let counts: Value = d.query_one("SELECT workflow.maint_run()", &[]).await?.get(0);
    ensure!(counts["orphanedRuns"] == 1 && counts["unroutableMarked"] == 1, "{counts}");
    let run = call(&c, "SELECT workflow.run_get('wrun_orphan', '{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(run["status"] == "failed" && run["errorCode"] == "ORPHANED", "{run}");
    let sleeping = call(&c, "SELECT workflow.run_get('wrun_sleeping', '{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(sleeping["status"] == "running", "a run parked on a sleep is never orphaned");

    su.execute("UPDATE workflow.messages SET unroutable_since = now() - interval '2 hours' WHERE id = $1", &[&id]).await?;
    let counts: Value = d.query_one("SELECT workflow.maint_run()", &[]).await?.get(0);
    ensure!(counts["unroutableDead"] == 1, "{counts}");
    let (st, _, _, _) = state(&su, id).await?;
    ensure!(st == "dead");
    let code: String =
        su.query_one("SELECT last_failure->>'code' FROM workflow.message_bodies WHERE id = $1", &[&id]).await?.get(0);
    ensure!(code == "ROUTE_NOT_FOUND");
    Ok(())
}

#[tokio::test]
async fn apps_never_see_each_others_messages() -> Result<()> {
    let db = TestDb::new().await?;
    db.provision("b").await?;
    let a = db.session("default").await?;
    let b = db.session("b").await?;
    let out = enqueue(&a, json!({"queueName": "q", "message": 1, "deploymentId": "v1"})).await?.map_err(|e| anyhow!("{e:?}"))?;
    let su = db.superuser().await?;
    su.batch_execute("UPDATE workflow.messages SET state = 'dead', dead_at = now()").await?;
    let mine = call(&a, "SELECT workflow.dead_letters_list('{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    let theirs = call(&b, "SELECT workflow.dead_letters_list('{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(mine["data"].as_array().map(Vec::len) == Some(1) && theirs["data"] == json!([]), "{theirs}");
    let r = call(&b, "SELECT workflow.dead_letter_retry($1)", &[&out["messageId"].as_str().unwrap_or_default()]).await?;
    ensure!(matches!(&r, Err(e) if e.sqlstate == "WF404"), "{r:?}");
    Ok(())
}

async fn enqueue_v1(c: &Client, message: Value) -> Result<i64> {
    let out = enqueue(c, json!({"queueName": "__wkf_workflow_w", "message": message, "deploymentId": "v1"}))
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(msg_num(out["messageId"].as_str().unwrap_or_default()))
}

/// Claims resume from a floor in claim order (extension claim.rs). A message due before the
/// floor whose transaction commits later (a long app transaction, a wake-up racing a claim) is
/// still found, by the transaction that made it due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_after_claims_moved_past_its_due_time_is_still_claimed() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    let slow = db.session("default").await?;
    slow.batch_execute("BEGIN").await?;
    // Due at this transaction's start, before every message below.
    let late = enqueue_v1(&slow, json!({"late": true})).await?;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut early = BTreeSet::new();
    for i in 0..3 {
        early.insert(enqueue_v1(&c, json!({"i": i})).await?);
    }
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let first: BTreeSet<i64> = claim(&d, 10, 60.0).await?.iter().map(|r| r.1).collect();
    ensure!(first == early, "the committed messages: {first:?}");
    // Claims in between, with the slow transaction still open, find nothing and move on.
    ensure!(claim(&d, 10, 60.0).await?.is_empty(), "nothing else is due yet");
    let after = enqueue_v1(&c, json!({"after": true})).await?;
    ensure!(claim(&d, 10, 60.0).await?.iter().map(|r| r.1).collect::<Vec<_>>() == vec![after], "the next one");
    slow.batch_execute("COMMIT").await?;
    let second: Vec<i64> = claim(&d, 10, 60.0).await?.iter().map(|r| r.1).collect();
    ensure!(second == vec![late], "the late message is claimed once its transaction commits: {second:?}");
    // A message made due again by a transaction that began before the last claim: same rule.
    let waker = db.superuser().await?;
    waker.batch_execute("BEGIN").await?;
    waker
        .execute("UPDATE workflow.messages SET state = 'pending', lease_id = NULL, available_at = now() WHERE id = $1", &[&late])
        .await?;
    let more = enqueue_v1(&c, json!({"more": true})).await?;
    ensure!(claim(&d, 10, 60.0).await?.iter().map(|r| r.1).collect::<Vec<_>>() == vec![more], "the newer one first");
    waker.batch_execute("COMMIT").await?;
    ensure!(claim(&d, 10, 60.0).await?.iter().map(|r| r.1).collect::<Vec<_>>() == vec![late], "made due again");
    Ok(())
}

/// Several producers and two claimers while an old REPEATABLE READ snapshot stays open: every
/// message is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_take_every_message_once_while_an_old_snapshot_is_open() -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    const PRODUCERS: usize = 4;
    const EACH: usize = 60;
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    let reader = db.superuser().await?;
    reader.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM workflow.messages").await?;
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let s = db.session("default").await?;
        producers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                ids.push(enqueue_v1(&s, json!({"p": p, "i": i})).await?);
            }
            anyhow::Ok(ids)
        }));
    }
    let total = Arc::new(AtomicUsize::new(0));
    let mut claimers = Vec::new();
    for _ in 0..2 {
        let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
        let total = Arc::clone(&total);
        claimers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while total.load(Ordering::SeqCst) < PRODUCERS * EACH && std::time::Instant::now() < deadline {
                let batch = claim(&d, 7, 60.0).await?;
                if batch.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
                let leases: Vec<String> = batch.iter().map(|r| r.0.clone()).collect();
                d.execute("SELECT workflow.dispatch_delivered($1::text[]::uuid[])", &[&leases]).await?;
                total.fetch_add(batch.len(), Ordering::SeqCst);
                got.extend(batch.iter().map(|r| r.1));
            }
            anyhow::Ok(got)
        }));
    }
    let mut produced = BTreeSet::new();
    for p in producers {
        produced.extend(p.await??);
    }
    let mut claimed = Vec::new();
    for h in claimers {
        claimed.extend(h.await??);
    }
    let distinct: BTreeSet<i64> = claimed.iter().copied().collect();
    ensure!(distinct.len() == claimed.len(), "a message was claimed twice");
    ensure!(distinct == produced, "claimed {} of {} messages", distinct.len(), produced.len());
    reader.batch_execute("COMMIT").await?;
    Ok(())
}

/// A claim that locked messages and rolled back (a dispatcher killed mid-claim) leaves them below
/// another backend's floor; that backend's periodic scan from the start finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_a_rolled_back_claim_held_are_found_by_the_periodic_full_scan() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    register(&c, "pod-1", "v1", endpoints()).await?;
    let mut held = BTreeSet::new();
    for i in 0..3 {
        held.insert(enqueue_v1(&c, json!({"i": i})).await?);
    }
    let crashing = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    crashing.batch_execute("BEGIN").await?;
    ensure!(claim(&crashing, 10, 60.0).await?.len() == 3, "the crashing claim holds all three");
    let after = enqueue_v1(&c, json!({"after": true})).await?;
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    ensure!(claim(&d, 10, 60.0).await?.iter().map(|r| r.1).collect::<Vec<_>>() == vec![after], "locked rows skipped");
    crashing.batch_execute("ROLLBACK").await?;
    let started = std::time::Instant::now();
    let mut found = BTreeSet::new();
    while found != held {
        ensure!(started.elapsed() < std::time::Duration::from_secs(45), "found {found:?} of {held:?} after 45 s");
        found.extend(claim(&d, 10, 60.0).await?.iter().map(|r| r.1));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Ok(())
}

/// A message that names no deployment version (a health check from the WDK's CLI or web UI)
/// goes to the app's newest version with pods, not to a version nobody serves.
#[tokio::test]
async fn a_message_naming_no_version_goes_to_the_newest_version_with_pods() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let su = db.superuser().await?;
    let version_of = |id: i64| {
        let su = &su;
        async move {
            anyhow::Ok(
                su.query_one("SELECT deployment_version FROM workflow.messages WHERE id = $1", &[&id]).await?.get::<_, String>(0),
            )
        }
    };
    let health = json!({"queueName": "__wkf_workflow_health_check", "message": {"__healthCheck": true, "correlationId": "c1"}});
    let nobody = enqueue(&c, health.clone()).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(version_of(msg_num(nobody["messageId"].as_str().unwrap_or_default())).await?.is_empty(), "no pods yet: no version");
    register(&c, "pod-1", "v1", endpoints()).await?;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    register(&c, "pod-2", "v2", endpoints()).await?;
    let routed = enqueue(&c, health.clone()).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(version_of(msg_num(routed["messageId"].as_str().unwrap_or_default())).await? == "v2");
    c.batch_execute("SET workflow.admin = on").await?;
    call(
        &c,
        "SELECT workflow.version_notify($1)",
        &[&json!({"applicationId": "default", "deploymentVersion": "v2", "status": "draining"})],
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    let after = enqueue(&c, health).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(
        version_of(msg_num(after["messageId"].as_str().unwrap_or_default())).await? == "v1",
        "a draining version takes no new work"
    );
    Ok(())
}
