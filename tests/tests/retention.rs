//! Run retention: maintenance deletes finished runs past their app's retention with everything
//! they own, in bounded batches, and never touches a run that is still active or still has
//! queue work.

use anyhow::{anyhow, ensure, Result};
use pgworld_it::{call, create_run, event_create, TestDb, DISPATCHER_ROLE};
use serde_json::{json, Value};
use tokio_postgres::Client;

async fn events(c: &Client, run: &str, bodies: &[Value]) -> Result<()> {
    for b in bodies {
        event_create(c, run, json!({}), b.clone()).await?.map_err(|e| anyhow!("{run}: {e:?}"))?;
    }
    Ok(())
}

/// A run that went through a step, a hook, a wait and a stream, then `end` (or stays running).
async fn busy_run(c: &Client, run: &str, end: Option<Value>) -> Result<()> {
    create_run(c, run).await?;
    events(
        c,
        run,
        &[
            json!({"eventType": "run_started"}),
            json!({"eventType": "step_created", "correlationId": "s1", "eventData": {"stepName": "work"}}),
            json!({"eventType": "step_started", "correlationId": "s1"}),
            json!({"eventType": "step_completed", "correlationId": "s1", "eventData": {"result": 1}}),
            json!({"eventType": "hook_created", "correlationId": "h1", "eventData": {"token": format!("tok-{run}")}}),
            json!({"eventType": "wait_created", "correlationId": "w1", "eventData": {"resumeAt": "2099-01-01T00:00:00Z"}}),
        ],
    )
    .await?;
    c.execute("SELECT workflow.stream_put($1, $2, '{}', '{\"data\":\"aGk=\"}')", &[&run, &format!("{run}-out")]).await?;
    if let Some(end) = end {
        events(c, run, &[end]).await?;
    }
    Ok(())
}

/// Rows anywhere that belong to `run`.
async fn rows_of(su: &Client, run: &str) -> Result<i64> {
    let n: i64 = su
        .query_one(
            "SELECT (SELECT count(*) FROM workflow.runs WHERE run_id = $1) + (SELECT count(*) FROM workflow.events WHERE run_id = $1) \
                  + (SELECT count(*) FROM workflow.steps WHERE run_id = $1) + (SELECT count(*) FROM workflow.hooks WHERE run_id = $1) \
                  + (SELECT count(*) FROM workflow.waits WHERE run_id = $1) + (SELECT count(*) FROM workflow.streams WHERE run_id = $1) \
                  + (SELECT count(*) FROM workflow.stream_chunks k JOIN workflow.streams s USING (application_id, name) WHERE s.run_id = $1) \
                  + (SELECT count(*) FROM workflow.messages WHERE run_id = $1)",
            &[&run],
        )
        .await?
        .get(0);
    Ok(n)
}

async fn age(su: &Client, run: &str, days: i32) -> Result<()> {
    su.execute("UPDATE workflow.runs SET updated_at = now() - make_interval(days => $2) WHERE run_id = $1", &[&run, &days])
        .await?;
    Ok(())
}

async fn maint(d: &Client) -> Result<Value> {
    Ok(d.query_one("SELECT workflow.maint_run()", &[]).await?.get(0))
}

#[tokio::test]
async fn finished_runs_past_retention_go_with_everything_they_own_and_active_runs_stay() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let su = db.superuser().await?;
    let d = db.session_as(DISPATCHER_ROLE).await?;

    busy_run(&c, "wrun_done_old", Some(json!({"eventType": "run_completed", "eventData": {"output": "x"}}))).await?;
    busy_run(&c, "wrun_failed_old", Some(json!({"eventType": "run_failed", "eventData": {"error": {"message": "no"}}}))).await?;
    busy_run(&c, "wrun_done_recent", Some(json!({"eventType": "run_completed"}))).await?;
    busy_run(&c, "wrun_active_ancient", None).await?;
    busy_run(&c, "wrun_done_with_work", Some(json!({"eventType": "run_completed"}))).await?;
    // A message still queued for a finished run: retention waits for it to finish.
    call(
        &c,
        "SELECT workflow.queue_enqueue('{}', $1)",
        &[&json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_done_with_work"}, "deploymentId": "v1"})],
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    for run in ["wrun_done_old", "wrun_failed_old", "wrun_active_ancient", "wrun_done_with_work"] {
        age(&su, run, 31).await?;
    }
    age(&su, "wrun_done_recent", 29).await?;
    ensure!(rows_of(&su, "wrun_done_old").await? > 10, "the old run has rows everywhere");

    let counts = maint(&d).await?;
    ensure!(counts["deletedRuns"] == 2, "{counts}");
    for gone in ["wrun_done_old", "wrun_failed_old"] {
        ensure!(rows_of(&su, gone).await? == 0, "{gone} left rows behind");
    }
    for kept in ["wrun_done_recent", "wrun_active_ancient", "wrun_done_with_work"] {
        ensure!(rows_of(&su, kept).await? > 10, "{kept} was touched");
    }
    let active = call(&c, "SELECT workflow.run_get('wrun_active_ancient')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(active["status"] == "running", "{active}");

    // A per-app retention shorter than the default: the 29-day-old run goes too.
    let set = call(&c, "SELECT workflow.retention_put('{\"runRetentionDays\": 7}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(set == json!({"runRetentionDays": 7.0, "isDefault": false}), "{set}");
    ensure!(maint(&d).await?["deletedRuns"] == 1, "the recent run under a 7-day retention");
    ensure!(rows_of(&su, "wrun_done_recent").await? == 0, "wrun_done_recent deleted");
    ensure!(rows_of(&su, "wrun_active_ancient").await? > 10, "still untouched");
    let bad = call(&c, "SELECT workflow.retention_put('{\"runRetentionDays\": 0}')", &[]).await?;
    ensure!(bad.as_ref().err().map(|e| e.sqlstate.as_str()) == Some("WF400"), "{bad:?}");
    let back =
        call(&c, "SELECT workflow.retention_put('{\"runRetentionDays\": null}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(back["isDefault"] == true, "{back}");
    Ok(())
}

#[tokio::test]
async fn retention_works_in_bounded_batches_and_per_app() -> Result<()> {
    let db = TestDb::new().await?;
    db.provision("other").await?;
    let c = db.session("default").await?;
    let o = db.session("other").await?;
    let su = db.superuser().await?;
    let d = db.session_as(DISPATCHER_ROLE).await?;
    for i in 0..150 {
        let run = format!("wrun_batch_{i:03}");
        create_run(&c, &run).await?;
        events(&c, &run, &[json!({"eventType": "run_started"}), json!({"eventType": "run_completed"})]).await?;
    }
    create_run(&o, "wrun_other_app").await?;
    events(&o, "wrun_other_app", &[json!({"eventType": "run_started"}), json!({"eventType": "run_completed"})]).await?;
    su.execute("UPDATE workflow.runs SET updated_at = now() - interval '10 days'", &[]).await?;
    // Only the default app keeps runs for a week; the other app keeps the 30-day default.
    call(&c, "SELECT workflow.retention_put('{\"runRetentionDays\": 7}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(maint(&d).await?["deletedRuns"] == 100, "one batch is 100 runs");
    ensure!(maint(&d).await?["deletedRuns"] == 50, "the rest on the next pass");
    ensure!(maint(&d).await?["deletedRuns"] == 0, "nothing left to do");
    let left: i64 = su.query_one("SELECT count(*) FROM workflow.runs", &[]).await?.get(0);
    ensure!(left == 1, "only the other app's run is left ({left})");
    Ok(())
}
