//! The real dispatcher binary delivering to real HTTP receivers from a real PostgreSQL 17:
//! version pinning, encodings, schedules, re-scheduling, several replicas, `kill -9` and a
//! PostgreSQL restart under load.

use anyhow::{anyhow, ensure, Context, Result};
use pgworld_it::process::DispatcherProc;
use pgworld_it::receiver::{Receiver, Reply};
use pgworld_it::{advance_to_due, call, enqueue, msg_num, register, wait_until, TestDb};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const BIN: &str = env!("CARGO_BIN_EXE_pgworld-dispatcher");

fn spawn(db: &TestDb, name: &str, env: &[(&str, &str)]) -> Result<DispatcherProc> {
    DispatcherProc::spawn(BIN, &db.dispatcher_url(), name, env)
}

/// A fresh database with one pod (`pod`, version v1) served by a fresh receiver.
async fn one_pod() -> Result<(TestDb, Client, Receiver)> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let r = Receiver::start().await?;
    register(&c, "pod", "v1", r.endpoints("p")).await?;
    Ok((db, c, r))
}

async fn enqueue_ok(c: &Client, envelope: Value) -> Result<i64> {
    let out = enqueue(c, envelope).await?.map_err(|e| anyhow!("enqueue failed: {e:?}"))?;
    Ok(msg_num(out["messageId"].as_str().unwrap_or_default()))
}

async fn states(su: &Client) -> Result<BTreeMap<String, i64>> {
    let rows = su.query("SELECT state, count(*) FROM workflow.messages GROUP BY state", &[]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_messages_reach_only_v1_pods_after_v2_registers() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let (v1, v2) = (Receiver::start().await?, Receiver::start().await?);
    register(&c, "pod-v1", "v1", v1.endpoints("v1")).await?;
    let _d = spawn(&db, "pinning", &[])?;
    for i in 0..10 {
        enqueue_ok(
            &c,
            json!({"queueName": "__wkf_workflow_wf", "message": {"runId": format!("wrun_{i}")}, "deploymentId": "v1"}),
        )
        .await?;
    }
    v1.wait_for(10, Duration::from_secs(20)).await?;
    // v2 is deployed: new pods register; old runs keep sending v1 messages.
    register(&c, "pod-v2", "v2", v2.endpoints("v2")).await?;
    for i in 0..20 {
        let version = if i % 2 == 0 { "v1" } else { "v2" };
        enqueue_ok(&c, json!({"queueName": "__wkf_step_s", "message": {"i": i}, "deploymentId": version})).await?;
    }
    v1.wait_for(20, Duration::from_secs(20)).await?;
    v2.wait_for(10, Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(v1.count() == 20 && v2.count() == 10, "v1 got {}, v2 got {}", v1.count(), v2.count());
    ensure!(v1.deliveries().iter().all(|d| d.path.starts_with("/v1/")), "nothing of v1 went to v2 pods");
    ensure!(v2.deliveries().iter().all(|d| d.path == "/v2/step"), "step queue → step URL");
    let first = &v1.deliveries()[0];
    ensure!(first.path == "/v1/workflow" && first.content_type() == "application/json", "{first:?}");
    let body = first.json.clone().unwrap_or_default();
    ensure!(body["meta"]["queueName"] == "__wkf_workflow_wf" && body["meta"]["attempt"] == 0, "{body}");
    ensure!(
        body["meta"]["messageId"].as_str().is_some_and(|s| s.starts_with("msg_")) && body["message"]["runId"].is_string(),
        "{body}"
    );
    ensure!(body["runId"] == body["message"]["runId"], "a JSON delivery names its run at the top level: {body}");

    // A version with no pods: its message waits, it is not dropped, and goes out once one registers.
    let v3 = Receiver::start().await?;
    let id = enqueue_ok(&c, json!({"queueName": "__wkf_workflow_wf", "message": {"late": true}, "deploymentId": "v3"})).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let su = db.superuser().await?;
    let st: String = su.query_one("SELECT state FROM workflow.messages WHERE id = $1", &[&id]).await?.get(0);
    ensure!(st == "pending" && v3.count() == 0, "unroutable message waits: {st}");
    register(&c, "pod-v3", "v3", v3.endpoints("v3")).await?;
    v3.wait_for(1, Duration::from_secs(10)).await?;
    wait_until(&su, "SELECT count(*) FROM workflow.messages WHERE state <> 'delivered'", 0i64, Duration::from_secs(10)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbor_bodies_are_spliced_unchanged_and_headers_forwarded() -> Result<()> {
    let (db, c, r) = one_pod().await?;
    let _d = spawn(&db, "cbor", &[])?;
    // message = {"runId": "wrun_x", "bytes": tag 64 h'0001', "n": 2^40}
    let message: Vec<u8> = [
        &[0xa3, 0x65][..],
        b"runId",
        &[0x66],
        b"wrun_x",
        &[0x65],
        b"bytes",
        &[0xd8, 0x40, 0x42, 0x00, 0x01, 0x61, b'n', 0x1b, 0, 0, 1, 0, 0, 0, 0, 0],
    ]
    .concat();
    let env = pgworld_it::cbor_envelope("__wkf_step_s", &message, Some("v1"));
    call(&c, "SELECT workflow.queue_enqueue_cbor('{}', $1)", &[&env]).await?.map_err(|e| anyhow!("{e:?}"))?;
    enqueue_ok(
        &c,
        json!({"queueName": "emails", "message": {"to": "a@b", "n": 12345678901234567890u64}, "deploymentId": "v1",
               "headers": {"x-trace-id": "t-1", "host": "evil", "proxy-authorization": "x"}}),
    )
    .await?;
    let got = r.wait_for(2, Duration::from_secs(20)).await?;
    let cbor = got.iter().find(|d| d.content_type() == "application/cbor").context("a CBOR delivery")?;
    let entries = pgworld_core::cbor::map_entries(&cbor.body).map_err(|e| anyhow!("{e:?}"))?;
    ensure!(entries[0].0 == "message" && cbor.body[entries[0].1.clone()] == message[..], "message bytes spliced unchanged");
    let meta = pgworld_core::cbor::to_json(&cbor.body[entries[1].1.clone()]).map_err(|e| anyhow!("{e:?}"))?;
    ensure!(meta["queueName"] == "__wkf_step_s" && meta["attempt"] == 0, "{meta}");
    let hook = got.iter().find(|d| d.path == "/p/webhook").context("the webhook delivery")?;
    ensure!(hook.headers.get("x-trace-id").and_then(|v| v.to_str().ok()) == Some("t-1"), "extra header forwarded");
    ensure!(hook.headers.get("proxy-authorization").is_none(), "hop-by-hop and proxy headers dropped");
    ensure!(hook.headers.get("host").and_then(|v| v.to_str().ok()) != Some("evil"), "host is never taken from the envelope");
    ensure!(hook.json.as_ref().and_then(|j| j.pointer("/message/n")) == Some(&json!(12345678901234567890u64)), "exact numbers");
    ensure!(
        hook.headers.get("user-agent").and_then(|v| v.to_str().ok()).is_some_and(|u| u.starts_with("pgworld-dispatcher/")),
        "user agent"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_messages_wait_for_their_time() -> Result<()> {
    let (db, c, r) = one_pod().await?;
    let _d = spawn(&db, "deferred", &[])?;
    let sent = Instant::now();
    enqueue_ok(&c, json!({"queueName": "q", "message": "later", "deploymentId": "v1", "delaySeconds": 1.5})).await?;
    enqueue_ok(&c, json!({"queueName": "q", "message": "now", "deploymentId": "v1"})).await?;
    let got = r.wait_for(2, Duration::from_secs(20)).await?;
    ensure!(got[0].json.as_ref().map(|j| &j["message"]) == Some(&json!("now")), "the due message goes first");
    let later = got[1].at.duration_since(sent);
    ensure!(later >= Duration::from_millis(1400), "deferred by its delay, delivered after {later:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_schedule_ends_in_a_dead_letter_that_can_be_retried() -> Result<()> {
    let (db, c, r) = one_pod().await?;
    r.script(|_| Reply::status(503));
    let _d = spawn(&db, "retries", &[])?;
    let id = enqueue_ok(&c, json!({"queueName": "emails", "message": {"to": "x"}, "deploymentId": "v1"})).await?;
    let su = db.superuser().await?;
    let mut waits = Vec::new();
    for attempt in 1..=10 {
        r.wait_for(attempt, Duration::from_secs(20)).await?;
        let sql = format!("SELECT attempts FROM workflow.messages WHERE id = {id}");
        wait_until(&su, &sql, i32::try_from(attempt)?, Duration::from_secs(20)).await?;
        let row = su
            .query_one(
                "SELECT state, extract(epoch FROM available_at - updated_at)::float8 FROM workflow.messages WHERE id = $1",
                &[&id],
            )
            .await?;
        let (state, wait): (String, f64) = (row.get(0), row.get(1));
        if attempt < 10 {
            ensure!(state == "retrying", "after failure {attempt}: {state}");
            waits.push(wait.round() as i64);
            // The clock moves: the retry is due now instead of in `wait` seconds.
            advance_to_due(&su, id).await?;
        } else {
            ensure!(state == "dead", "the 10th failure kills: {state}");
        }
    }
    ensure!(waits == [2, 4, 8, 16, 32, 60, 60, 60, 60], "{waits:?}");
    let attempts: Vec<i64> = r.deliveries().iter().map(|d| d.attempt()).collect();
    ensure!(attempts == (0..10).collect::<Vec<_>>(), "meta.attempt counts failures: {attempts:?}");
    ensure!(r.deliveries().iter().all(|d| d.message_id() == format!("msg_{id}")), "one id for every delivery");
    let dl = call(&c, "SELECT workflow.dead_letters_list('{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(dl["data"][0]["lastFailure"]["code"] == "HTTP_503" && dl["data"][0]["lastFailure"]["statusCode"] == 503, "{dl}");

    r.script(|_| Reply::ok());
    call(&c, "SELECT workflow.dead_letter_retry($1)", &[&format!("msg_{id}")]).await?.map_err(|e| anyhow!("{e:?}"))?;
    r.wait_for(11, Duration::from_secs(20)).await?;
    wait_until(
        &su,
        &format!("SELECT state FROM workflow.messages WHERE id = {id}"),
        "delivered".to_owned(),
        Duration::from_secs(10),
    )
    .await?;
    ensure!(r.deliveries()[10].attempt() == 0, "a retried dead letter starts over");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_seconds_and_425_reschedule_the_same_message() -> Result<()> {
    let (db, c, r) = one_pod().await?;
    r.script(|_| Reply::json(200, json!({"timeoutSeconds": 30})));
    let _d = spawn(&db, "reschedule", &[])?;
    let id =
        enqueue_ok(&c, json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_s"}, "deploymentId": "v1"})).await?;
    let su = db.superuser().await?;
    r.wait_for(1, Duration::from_secs(20)).await?;
    let sql = format!("SELECT state || ':' || attempts || ':' || round(extract(epoch FROM available_at - updated_at)) FROM workflow.messages WHERE id = {id}");
    wait_until(&su, &sql, "deferred:0:30".to_owned(), Duration::from_secs(10)).await?;

    let retry_after = su
        .query_one("SELECT to_char((now() + interval '5 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", &[])
        .await?
        .get::<_, String>(0);
    r.script(move |_| Reply::json(425, json!({"statusCode": 425, "error": "Too Early", "meta": {"retryAfter": retry_after}})));
    advance_to_due(&su, id).await?;
    r.wait_for(2, Duration::from_secs(20)).await?;
    let sql = format!("SELECT state || ':' || attempts FROM workflow.messages WHERE id = {id}");
    wait_until(&su, &sql, "deferred:0".to_owned(), Duration::from_secs(10)).await?;
    let wait: f64 = su
        .query_one("SELECT extract(epoch FROM available_at - updated_at)::float8 FROM workflow.messages WHERE id = $1", &[&id])
        .await?
        .get(0);
    ensure!((1.0..=6.0).contains(&wait), "425 waits until retryAfter (whole seconds, ≥ 1): {wait}");

    r.script(|_| Reply::ok());
    advance_to_due(&su, id).await?;
    r.wait_for(3, Duration::from_secs(20)).await?;
    wait_until(
        &su,
        &format!("SELECT state FROM workflow.messages WHERE id = {id}"),
        "delivered".to_owned(),
        Duration::from_secs(10),
    )
    .await?;
    let ids: BTreeSet<String> = r.deliveries().iter().map(|d| d.message_id()).collect();
    let attempts: Vec<i64> = r.deliveries().iter().map(|d| d.attempt()).collect();
    ensure!(ids.len() == 1 && attempts == [0, 0, 0], "same id, attempts unchanged: {ids:?} {attempts:?}");
    let rows: i64 = su.query_one("SELECT count(*) FROM workflow.messages", &[]).await?.get(0);
    ensure!(rows == 1, "re-scheduling writes no new message");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatchers_deliver_every_message_once() -> Result<()> {
    const N: usize = 1500;
    let (db, c, r) = one_pod().await?;
    let _a = spawn(&db, "pair-a", &[])?;
    let _b = spawn(&db, "pair-b", &[])?;
    c.batch_execute("BEGIN").await?;
    for i in 0..N {
        enqueue_ok(&c, json!({"queueName": "q", "message": i, "deploymentId": "v1"})).await?;
    }
    c.batch_execute("COMMIT").await?;
    r.wait_for(N, Duration::from_secs(60)).await?;
    let su = db.superuser().await?;
    wait_until(&su, "SELECT count(*) FROM workflow.messages WHERE state = 'delivered'", N as i64, Duration::from_secs(20))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for d in r.deliveries() {
        *per_id.entry(d.message_id()).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(per_id.len() == N && twice.is_empty(), "{} distinct, delivered more than once: {twice:?}", per_id.len());
    let owners: i64 = su.query_one("SELECT count(DISTINCT lease_owner) FROM workflow.messages", &[]).await?.get(0);
    ensure!(owners == 0, "leases are released on completion");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_delivery_loses_nothing() -> Result<()> {
    const ROUNDS: usize = 8;
    const PER_ROUND: usize = 10;
    let (db, c, r) = one_pod().await?;
    // First deliveries hang (the dispatcher dies while they are open); redeliveries succeed.
    r.script(|d| if d.attempt() == 0 { Reply::ok().after(Duration::from_secs(30)) } else { Reply::ok() });
    let su = db.superuser().await?;
    let mut expected = BTreeSet::new();
    let env = [("PGWORLD_LEASE_SECONDS", "1")];
    for round in 0..ROUNDS {
        let mut victim = spawn(&db, &format!("kill9-{round}"), &env)?;
        for i in 0..PER_ROUND {
            expected.insert(format!(
                "msg_{}",
                enqueue_ok(&c, json!({"queueName": "q", "message": [round, i], "deploymentId": "v1"})).await?
            ));
        }
        r.wait_for((round + 1) * PER_ROUND * 2 - PER_ROUND, Duration::from_secs(30)).await?;
        victim.kill9();
        // A fresh replica takes over after the leases expire.
        let survivor = spawn(&db, &format!("kill9-next-{round}"), &env)?;
        r.wait_for((round + 1) * PER_ROUND * 2, Duration::from_secs(30)).await?;
        wait_until(&su, "SELECT count(*) FROM workflow.messages WHERE state <> 'delivered'", 0i64, Duration::from_secs(20))
            .await?;
        drop(survivor);
    }
    let delivered: BTreeSet<String> = r.deliveries().iter().filter(|d| d.attempt() == 1).map(|d| d.message_id()).collect();
    ensure!(delivered == expected, "every message delivered again after its lease: {} of {}", delivered.len(), expected.len());
    let counts = states(&su).await?;
    ensure!(counts == BTreeMap::from([("delivered".to_owned(), (ROUNDS * PER_ROUND) as i64)]), "{counts:?}");
    let codes: i64 = su
        .query_one("SELECT count(*) FROM workflow.message_bodies WHERE last_failure->>'code' = 'LEASE_EXPIRED'", &[])
        .await?
        .get(0);
    ensure!(codes == (ROUNDS * PER_ROUND) as i64, "each interrupted delivery counted as LEASE_EXPIRED: {codes}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_step_keeps_its_lease_and_is_delivered_once() -> Result<()> {
    // The lease is renewed while the request is open: a handler busy for several lease lengths
    // (three minutes against the default 60 s lease unless PGWORLD_IT_LONG_STEP_S says otherwise)
    // must not see the message twice.
    let hold: u64 = std::env::var("PGWORLD_IT_LONG_STEP_S").ok().and_then(|v| v.parse().ok()).unwrap_or(180);
    let lease = (hold / 3).clamp(1, 60).to_string();
    let (db, c, r) = one_pod().await?;
    r.script(move |_| Reply::ok().after(Duration::from_secs(hold)));
    let _d = spawn(&db, "long-step", &[("PGWORLD_LEASE_SECONDS", &lease)])?;
    let id =
        enqueue_ok(&c, json!({"queueName": "__wkf_step_s", "message": {"runId": "wrun_long"}, "deploymentId": "v1"})).await?;
    let su = db.superuser().await?;
    let sql = format!("SELECT state FROM workflow.messages WHERE id = {id}");
    wait_until(&su, &sql, "delivered".to_owned(), Duration::from_secs(hold + 60)).await?;
    ensure!(r.count() == 1, "delivered {} times", r.count());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_open_deliveries_before_exiting() -> Result<()> {
    let (db, c, r) = one_pod().await?;
    r.script(|_| Reply::ok().after(Duration::from_millis(1500)));
    let mut d = spawn(&db, "sigterm", &[])?;
    for i in 0..5 {
        enqueue_ok(&c, json!({"queueName": "q", "message": i, "deploymentId": "v1"})).await?;
    }
    r.wait_for(5, Duration::from_secs(20)).await?;
    let clean = tokio::task::spawn_blocking(move || d.terminate(Duration::from_secs(20))).await??;
    ensure!(clean, "graceful exit with status 0");
    let su = db.superuser().await?;
    let counts = states(&su).await?;
    ensure!(counts == BTreeMap::from([("delivered".to_owned(), 5)]), "outcomes recorded before exit: {counts:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_failures_are_classified_like_platformatic() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let slow = Receiver::start().await?;
    slow.script(|_| Reply::ok().after(Duration::from_secs(5)));
    // A port held bound but never listening: connections are refused, and no other test's
    // server can take the port while this test runs (a dropped listener's port could be reused).
    let held = tokio::net::TcpSocket::new_v4()?;
    held.bind("127.0.0.1:0".parse()?)?;
    let closed = held.local_addr()?.port();
    let cases = [
        ("refused", format!("http://127.0.0.1:{closed}/x"), "ECONNREFUSED"),
        ("slow", format!("{}/slow", slow.base), "UND_ERR_HEADERS_TIMEOUT"),
        ("nxdomain", "http://pgworld-no-such-host.invalid/x".to_owned(), "ENOTFOUND"),
    ];
    for (version, url, _) in &cases {
        let endpoints = json!({"workflow": url, "step": url, "webhook": url});
        register(&c, &format!("pod-{version}"), version, endpoints).await?;
        enqueue_ok(&c, json!({"queueName": "q", "message": version, "deploymentId": version})).await?;
    }
    let _d = spawn(&db, "transport", &[("PGWORLD_DISPATCH_HEADERS_TIMEOUT_MS", "500")])?;
    let su = db.superuser().await?;
    wait_until(&su, "SELECT count(*) FROM workflow.messages WHERE state = 'retrying'", 3i64, Duration::from_secs(20)).await?;
    for (version, _, code) in &cases {
        let row = su
            .query_one(
                "SELECT b.last_failure FROM workflow.messages m JOIN workflow.message_bodies b USING (id) WHERE m.deployment_version = $1",
                &[version],
            )
            .await?;
        let failure: Value = row.get(0);
        ensure!(failure["code"] == *code && failure["attempt"] == 1, "{version}: {failure}");
        ensure!(failure["target"]["deploymentVersion"] == *version && failure.get("statusCode").is_none(), "{failure}");
    }
    Ok(())
}
