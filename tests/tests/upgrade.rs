//! Extension upgrades: a database on the released 0.1.0, holding data, is updated with
//! `ALTER EXTENSION pgworld UPDATE` and must keep its data, serve it through the new functions,
//! and end with exactly the catalog of a fresh install.

use anyhow::{ensure, Result};
use pgworld_it::{call, create_run, event_create, TestDb};
use serde_json::json;

const CATALOG: &str = include_str!("../sql/catalog.sql");

async fn catalog(db: &TestDb) -> Result<Vec<String>> {
    let c = db.superuser().await?;
    let mut lines = Vec::new();
    for m in c.simple_query(CATALOG).await? {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            lines.push(r.get(0).unwrap_or_default().to_owned());
        }
    }
    Ok(lines)
}

#[tokio::test]
async fn a_released_version_upgrades_in_place_with_its_data() -> Result<()> {
    let db = TestDb::with_extension_version("0.1.0").await?;
    let c = db.session("default").await?;
    // Data written by 0.1.0: a finished run with a step, a live run parked on a hook and a wait,
    // a queued message and a stream.
    create_run(&c, "wrun_old_done").await?;
    for body in [
        json!({"eventType": "run_started"}),
        json!({"eventType": "step_created", "correlationId": "s1", "eventData": {"stepName": "charge"}}),
        json!({"eventType": "step_started", "correlationId": "s1"}),
        json!({"eventType": "step_completed", "correlationId": "s1", "eventData": {"result": 42}}),
        json!({"eventType": "run_completed", "eventData": {"output": "ok"}}),
    ] {
        event_create(&c, "wrun_old_done", json!({}), body).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    create_run(&c, "wrun_old_live").await?;
    for body in [
        json!({"eventType": "run_started"}),
        json!({"eventType": "hook_created", "correlationId": "h1", "eventData": {"token": "tok-old"}}),
        json!({"eventType": "wait_created", "correlationId": "w1", "eventData": {"resumeAt": "2099-01-01T00:00:00Z"}}),
    ] {
        event_create(&c, "wrun_old_live", json!({}), body).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    call(
        &c,
        "SELECT workflow.queue_enqueue('{}', $1)",
        &[&json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_old_live"}, "deploymentId": "v1"})],
    )
    .await?
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    c.execute("SELECT workflow.stream_put('wrun_old_live', 'out', '{}', '{\"data\":\"aGk=\"}')", &[]).await?;
    let before = call(&c, "SELECT workflow.run_get('wrun_old_done')", &[]).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;

    db.superuser().await?.batch_execute("ALTER EXTENSION pgworld UPDATE").await?;
    let c = db.session("default").await?;
    let version: String = c.query_one("SELECT extversion FROM pg_extension WHERE extname = 'pgworld'", &[]).await?.get(0);
    ensure!(version == "0.6.0", "updated to {version}");

    // The data is all there, through the old functions and the new ones.
    let after = call(&c, "SELECT workflow.run_get('wrun_old_done')", &[]).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(before == after, "run unchanged: {before} vs {after}");
    let events = call(&c, "SELECT workflow.events_list('wrun_old_done')", &[]).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(events["data"].as_array().map(Vec::len) == Some(6), "{events}");
    let status = call(&c, "SELECT workflow.version_status('v1')", &[]).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(status["activeRuns"] == 1 && status["pendingHooks"] == 1 && status["pendingWaits"] == 1, "{status}");
    ensure!(status["queuedMessages"] == 1, "{status}");
    let trace: Vec<String> =
        c.query("SELECT workflow.run_trace('wrun_old_done')", &[]).await?.iter().map(|r| r.get::<_, String>(0)).collect();
    ensure!(trace.iter().any(|l| l.starts_with("step  charge") && l.contains("completed")), "{trace:#?}");
    let overview = c
        .query_one("SELECT steps, steps_completed, hooks_pending FROM workflow.runs_overview WHERE run_id = 'wrun_old_live'", &[])
        .await?;
    ensure!(overview.get::<_, i64>(0) == 0 && overview.get::<_, i64>(2) == 1, "live run overview");
    let retention = call(&c, "SELECT workflow.retention_get()", &[]).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(retention == json!({"runRetentionDays": 30.0, "isDefault": true}), "{retention}");
    // New work keeps going on the upgraded database.
    event_create(&c, "wrun_old_live", json!({}), json!({"eventType": "hook_received", "correlationId": "h1", "eventData": {}}))
        .await?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    // Same catalog as a fresh install of the new version.
    let fresh = TestDb::new().await?;
    let (upgraded, installed) = (catalog(&db).await?, catalog(&fresh).await?);
    ensure!(upgraded.len() > 500, "the catalog query sees the schema ({} lines)", upgraded.len());
    let only_upgraded: Vec<_> = upgraded.iter().filter(|l| !installed.contains(l)).collect();
    let only_fresh: Vec<_> = installed.iter().filter(|l| !upgraded.contains(l)).collect();
    ensure!(
        only_upgraded.is_empty() && only_fresh.is_empty(),
        "catalogs differ\nonly after upgrade: {only_upgraded:#?}\nonly in a fresh install: {only_fresh:#?}"
    );
    Ok(())
}
