//! Logical backups: `pg_dump` and `pg_restore` (custom format) and `pg_dump | psql` (plain)
//! carry every tenant row, secrets byte for byte, and the identity counters; the restored
//! database goes on where the dump left off, and the dispatcher delivers its queue.

use anyhow::{anyhow, bail, ensure, Context, Result};
use pgworld_it::process::DispatcherProc;
use pgworld_it::receiver::Receiver;
use pgworld_it::{call, create_run, event_create, TestDb};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

fn tool(name: &str) -> Result<std::path::PathBuf> {
    let bin = std::env::var("PGWORLD_PG_BIN").context("PGWORLD_PG_BIN is set by ./pgw test")?;
    Ok(std::path::Path::new(&bin).join(name))
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn ok(c: &tokio_postgres::Client, sql: &str, args: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<Value> {
    call(c, sql, args).await?.map_err(|e| anyhow!("{sql}: {e:?}"))
}

/// A database holding something of every kind: apps with secrets, a role and a Kubernetes
/// binding, quotas, runs with events, steps, hooks and waits, handlers, messages in every state
/// (a dead letter among them) and streams.
async fn fill(db: &TestDb) -> Result<()> {
    let su = db.superuser().await?;
    for app in ["default", "shop", "billing", "ops"] {
        ok(&su, "SELECT workflow.app_provision($1)", &[&json!({"appId": app})]).await?;
    }
    let role = format!("backup_role_{}", db.name);
    su.batch_execute(&format!("CREATE ROLE {role} LOGIN IN ROLE pgworld_client")).await?;
    ok(&su, "SELECT workflow.app_role_grant('shop', $1)", &[&role]).await?;
    let admin = db.session("shop").await?;
    admin.batch_execute("SET workflow.admin = on").await?;
    ok(&admin, "SELECT workflow.k8s_binding_add($1)", &[&json!({"namespace": "shop", "serviceAccount": "shop-sa"})]).await?;
    ok(&admin, "SELECT workflow.quotas_put($1)", &[&json!({"maxRuns": 500, "maxEventsPerRun": 900})]).await?;

    let c = db.session("default").await?;
    create_run(&c, "wrun_b1").await?;
    for body in [
        json!({"eventType": "run_started"}),
        json!({"eventType": "step_created", "correlationId": "s1", "eventData": {"stepName": "charge", "input": {"__type": "Uint8Array", "data": "AAEC"}}}),
        json!({"eventType": "step_started", "correlationId": "s1"}),
        json!({"eventType": "hook_created", "correlationId": "h1", "eventData": {"token": "tok-b1"}}),
        json!({"eventType": "wait_created", "correlationId": "w1", "eventData": {"resumeAt": "2099-01-01T00:00:00Z"}}),
    ] {
        event_create(&c, "wrun_b1", json!({"$payload": "envelope"}), body).await?.map_err(|e| anyhow!("{e:?}"))?;
    }
    create_run(&c, "wrun_b2").await?;
    event_create(&c, "wrun_b2", json!({}), json!({"eventType": "run_started"})).await?.map_err(|e| anyhow!("{e:?}"))?;
    event_create(&c, "wrun_b2", json!({}), json!({"eventType": "run_completed", "eventData": {"output": "done"}}))
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    c.execute("SELECT workflow.stream_put('wrun_b1', 'out', '{}', '{\"data\":\"aGk=\"}')", &[]).await?;
    c.execute("SELECT workflow.stream_put_bytes('wrun_b1', 'raw', '{}', '\\x00ff'::bytea)", &[]).await?;

    let endpoints =
        json!({"workflow": "http://127.0.0.1:9/flow", "step": "http://127.0.0.1:9/step", "webhook": "http://127.0.0.1:9/hook"});
    ok(
        &c,
        "SELECT workflow.handler_register($1)",
        &[&json!({"podId": "pod-1", "deploymentVersion": "v1", "endpoints": endpoints})],
    )
    .await?;
    let enqueue = |extra: Value| {
        let mut m = json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_b1"}, "deploymentId": "v1"});
        if let (Value::Object(m), Value::Object(x)) = (&mut m, extra) {
            m.extend(x);
        }
        m
    };
    // Claimed and settled as a dispatcher would: delivered, retrying, leased; then pending and
    // deferred ones; and a dead letter from an expired version.
    for _ in 0..3 {
        ok(&c, "SELECT workflow.queue_enqueue('{}', $1)", &[&enqueue(json!({}))]).await?;
    }
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let leases: Vec<String> = d
        .query("SELECT lease_id::text FROM workflow.dispatch_claim('backup', 3, 60)", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(leases.len() == 3, "claimed {leases:?}");
    d.execute("SELECT workflow.dispatch_delivered(ARRAY[$1::text::uuid])", &[&leases[0]]).await?;
    d.execute(
        "SELECT workflow.dispatch_complete($1::text::uuid, $2)",
        &[&leases[1], &json!({"outcome": "failed", "code": "HTTP_500", "message": "boom", "statusCode": 500})],
    )
    .await?;
    ok(&c, "SELECT workflow.queue_enqueue('{}', $1)", &[&enqueue(json!({"idempotencyKey": "once"}))]).await?;
    ok(&c, "SELECT workflow.queue_enqueue('{}', $1)", &[&enqueue(json!({"delaySeconds": 3600}))]).await?;
    ok(&c, "SELECT workflow.queue_enqueue('{}', $1)", &[&enqueue(json!({"deploymentId": "v0"}))]).await?;
    let su_admin = db.session("default").await?;
    su_admin.batch_execute("SET workflow.admin = on").await?;
    ok(&su_admin, "SELECT workflow.version_expire('v0')", &[]).await?;
    let states: Vec<String> =
        su.query("SELECT DISTINCT state FROM workflow.messages ORDER BY 1", &[]).await?.iter().map(|r| r.get(0)).collect();
    ensure!(states == ["dead", "deferred", "delivered", "leased", "pending", "retrying"], "every state: {states:?}");
    Ok(())
}

/// Every row of every pgworld table but `notify_gate` (which a restore makes anew), as text.
async fn snapshot(db: &TestDb) -> Result<BTreeMap<String, String>> {
    let su = db.superuser().await?;
    let tables: Vec<String> = su
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'workflow'::regnamespace AND relkind = 'r' \
               AND relname <> 'notify_gate' ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = BTreeMap::new();
    // messages.ready_xid names a transaction of the cluster that wrote the row; a restore marks
    // the rows with its own (the claim floors need nothing older), so it is left out.
    for t in tables {
        let rows: Option<String> = su
            .query_one(
                &format!("SELECT string_agg(r, E'\\n' ORDER BY r) FROM (SELECT (to_jsonb(t) - 'ready_xid')::text r FROM workflow.{t} t) x"),
                &[],
            )
            .await?
            .get(0);
        out.insert(t, rows.unwrap_or_default());
    }
    Ok(out)
}

async fn restore(source: &TestDb, plain: bool) -> Result<TestDb> {
    let target = TestDb::empty().await?;
    let dump = std::env::temp_dir().join(format!("{}-{}.dump", source.name, if plain { "plain" } else { "custom" }));
    let dump_path = dump.to_string_lossy().into_owned();
    run(Command::new(tool("pg_dump")?).args(["-d", &source.url, "-f", &dump_path, if plain { "-Fp" } else { "-Fc" }]))?;
    if plain {
        run(Command::new(tool("psql")?).args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &target.url, "-f", &dump_path]))?;
    } else {
        run(Command::new(tool("pg_restore")?).args(["--exit-on-error", "-d", &target.url, &dump_path]))?;
    }
    let _ = std::fs::remove_file(&dump);
    Ok(target)
}

/// The restored database keeps working: the next event takes the next slot, new messages and
/// apps get fresh ids, per-run keys are unchanged, and the dispatcher delivers the queue.
async fn goes_on(source: &TestDb, restored: &TestDb) -> Result<()> {
    let (a, b) = (source.session("default").await?, restored.session("default").await?);
    let key_a = ok(&a, "SELECT workflow.encryption_key('{\"runId\":\"wrun_b1\"}')", &[]).await?;
    let key_b = ok(&b, "SELECT workflow.encryption_key('{\"runId\":\"wrun_b1\"}')", &[]).await?;
    ensure!(key_a == key_b && key_a["key"].is_string(), "per-run keys survive: {key_a} / {key_b}");
    let next = event_create(
        &b,
        "wrun_b1",
        json!({}),
        json!({"eventType": "step_completed", "correlationId": "s1", "eventData": {"result": 1}}),
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    ensure!(next["event"]["eventId"] == "evnt_00000000000000000000000007", "the next slot: {next}");
    let max_id: i64 = restored.superuser().await?.query_one("SELECT max(id) FROM workflow.messages", &[]).await?.get(0);
    let fresh = ok(
        &b,
        "SELECT workflow.queue_enqueue('{}', $1)",
        &[&json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_b1"}, "deploymentId": "v1"})],
    )
    .await?;
    let fresh_id = pgworld_it::msg_num(fresh["messageId"].as_str().unwrap_or_default());
    ensure!(fresh_id > max_id, "a new message id {fresh_id} after {max_id}");
    let su = restored.superuser().await?;
    let app = ok(&su, "SELECT workflow.app_provision('{\"appId\":\"newcomer\"}')", &[]).await?;
    ensure!(app["created"] == true, "{app}");
    let distinct: i64 = su.query_one("SELECT count(DISTINCT application_id) FROM workflow.applications", &[]).await?.get(0);
    ensure!(distinct == 5, "five apps with five ids");

    // The restored queue is delivered: point v1's pod at a live receiver.
    let receiver = Receiver::start().await?;
    let url = receiver.base.clone();
    let endpoints = json!({"workflow": format!("{url}/flow"), "step": format!("{url}/step"), "webhook": format!("{url}/hook")});
    ok(
        &b,
        "SELECT workflow.handler_register($1)",
        &[&json!({"podId": "pod-1", "deploymentVersion": "v1", "endpoints": endpoints})],
    )
    .await?;
    let _dispatcher = DispatcherProc::spawn(
        env!("CARGO_BIN_EXE_pgworld-dispatcher"),
        &restored.dispatcher_url(),
        "backup",
        &[("PGWORLD_MODE", "single"), ("PGWORLD_METRICS_PORT", "0")],
    )?;
    // The pending messages (the idempotent one and the fresh one) arrive.
    receiver.wait_for(2, Duration::from_secs(30)).await?;
    Ok(())
}

async fn round_trip(source: &TestDb) -> Result<()> {
    let before = snapshot(source).await?;
    ensure!(before.values().filter(|rows| !rows.is_empty()).count() >= 15, "the source holds rows of every kind");
    for plain in [false, true] {
        let restored = restore(source, plain).await?;
        let after = snapshot(&restored).await?;
        for (table, rows) in &before {
            ensure!(after.get(table) == Some(rows), "{table} differs after a {} restore", if plain { "plain" } else { "custom" });
        }
        goes_on(source, &restored).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_and_restore_keep_every_row_and_keep_working() -> Result<()> {
    let db = TestDb::new().await?;
    fill(&db).await?;
    round_trip(&db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_upgraded_from_0_1_0_dumps_and_restores_too() -> Result<()> {
    let db = TestDb::with_extension_version("0.1.0").await?;
    db.superuser().await?.batch_execute("ALTER EXTENSION pgworld UPDATE").await?;
    fill(&db).await?;
    round_trip(&db).await
}
