//! Several real sessions racing on one run or one token (spec/events.md §2 invariants).

use anyhow::{ensure, Result};
use pgworld_it::{create_run, event_create, TestDb};
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn slot_of(event: &Value) -> i64 {
    event["eventId"].as_str().and_then(pgworld_slot).unwrap_or(-1)
}

fn pgworld_slot(id: &str) -> Option<i64> {
    id.strip_prefix("evnt_").and_then(|d| d.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_on_one_run_get_dense_unique_slots_and_exact_reports() -> Result<()> {
    let db = TestDb::new().await?;
    let setup = db.session("default").await?;
    create_run(&setup, "wrun_race").await?;
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let c = db.session("default").await?;
        tasks.push(tokio::spawn(async move {
            // Each writer believes the log is as long as the last slot it saw itself.
            let mut believed: i64 = 1;
            let mut seen = Vec::new();
            for i in 0..EACH {
                let body =
                    json!({"eventType": "wait_created", "correlationId": format!("w{w}_{i}"), "eventData": {"resumeAt": 0}});
                let out = event_create(&c, "wrun_race", json!({"eventCount": believed.to_string()}), body).await?;
                let out = out.map_err(|e| anyhow::anyhow!("append failed: {e:?}"))?;
                let slot = slot_of(&out["event"]);
                seen.push((believed, slot, out));
                believed = slot;
            }
            anyhow::Ok(seen)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let slots: BTreeSet<i64> = all.iter().map(|(_, s, _)| *s).collect();
    ensure!(slots.len() == WRITERS * EACH, "every append got its own slot");
    ensure!(slots.iter().copied().eq(2..=(WRITERS * EACH) as i64 + 1), "slots are dense after run_created");

    let check = db.session("default").await?;
    let log = check.query_one("SELECT workflow.events_list('wrun_race', '{\"limit\":\"1000\"}')", &[]).await?.get::<_, Value>(0);
    let by_slot: Vec<Value> = log["data"].as_array().cloned().unwrap_or_default();
    let mut reports = 0;
    for (believed, slot, out) in &all {
        if *slot > believed + 1 {
            reports += 1;
            let reported: Vec<i64> = out["events"].as_array().map(|a| a.iter().map(slot_of).collect()).unwrap_or_default();
            ensure!(reported == ((believed + 1)..*slot).collect::<Vec<_>>(), "report of {slot} after {believed}: {reported:?}");
            for e in out["events"].as_array().into_iter().flatten() {
                let stored = &by_slot[usize::try_from(slot_of(e) - 1)?];
                ensure!(e == stored, "reported event equals the stored one");
            }
            ensure!(
                out["hasMore"] == json!(false)
                    && out["cursor"]
                        == out["events"].as_array().and_then(|a| a.last()).map(|l| l["eventId"].clone()).unwrap_or_default()
            );
        } else {
            ensure!(out.get("events").is_none() && out.get("cursor").is_none(), "no report when nothing was skipped");
        }
    }
    ensure!(reports > 0, "concurrent writers must have skipped each other at least once");
    let count: i64 = check.query_one("SELECT event_count FROM workflow.runs WHERE run_id = 'wrun_race'", &[]).await?.get(0);
    ensure!(count == (WRITERS * EACH) as i64 + 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lazy_step_start_blocked_behind_another_loses_with_409() -> Result<()> {
    let db = TestDb::new().await?;
    let a = db.session("default").await?;
    let b = db.session("default").await?;
    create_run(&a, "wrun_lazy").await?;
    let lazy = json!({"eventType": "step_started", "correlationId": "step_1", "eventData": {"stepName": "s", "input": null}});
    a.batch_execute("BEGIN").await?;
    let first = event_create(&a, "wrun_lazy", json!({}), lazy.clone()).await?;
    ensure!(first.as_ref().map(|o| o["stepCreated"] == json!(true)).unwrap_or(false), "{first:?}");
    // B queues on the run row lock that A holds until it commits.
    let lazy_b = lazy.clone();
    let second = tokio::spawn(async move { event_create(&b, "wrun_lazy", json!({}), lazy_b).await });
    a.batch_execute("COMMIT").await?;
    let second = second.await??;
    let err = second.err().ok_or_else(|| anyhow::anyhow!("the second lazy start must lose"))?;
    ensure!((err.sqlstate.as_str(), err.code.as_str()) == ("WF409", "WF_STEP_EXISTS"), "{err:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_lazy_step_starts_make_exactly_one_winner() -> Result<()> {
    let db = TestDb::new().await?;
    let setup = db.session("default").await?;
    create_run(&setup, "wrun_many").await?;
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(std::sync::Arc::new(db.session("default").await?));
    }
    for round in 0..20 {
        let step = format!("step_{round}");
        let mut tasks = Vec::new();
        for c in &sessions {
            let c = c.clone();
            let body =
                json!({"eventType": "step_started", "correlationId": step, "eventData": {"stepName": "s", "input": round}});
            tasks.push(tokio::spawn(async move { event_create(&c, "wrun_many", json!({}), body).await }));
        }
        let mut winners = 0;
        for t in tasks {
            match t.await?? {
                Ok(out) => {
                    ensure!(out["stepCreated"] == json!(true));
                    winners += 1;
                }
                Err(e) => ensure!(e.code == "WF_STEP_EXISTS", "{e:?}"),
            }
        }
        ensure!(winners == 1, "round {round}: {winners} winners");
        let rows: i64 = setup
            .query_one("SELECT count(*) FROM workflow.events WHERE run_id = 'wrun_many' AND correlation_id = $1", &[&step])
            .await?
            .get(0);
        ensure!(rows == 2, "one synthetic step_created and one step_started, got {rows}");
    }
    Ok(())
}

async fn hook_created(
    c: &tokio_postgres::Client,
    run: &str,
    token: &str,
) -> Result<std::result::Result<Value, pgworld_it::WfErr>> {
    event_create(
        c,
        run,
        json!({}),
        json!({"eventType": "hook_created", "correlationId": "hook_1", "eventData": {"token": token}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runs_racing_for_one_token_leave_one_hook_and_one_conflict() -> Result<()> {
    let db = TestDb::new().await?;
    let a = db.session("default").await?;
    let b = std::sync::Arc::new(db.session("default").await?);
    create_run(&a, "wrun_a").await?;
    create_run(&a, "wrun_b").await?;

    // A holds the token uncommitted; B's claim waits on the live-token index, then sees A's commit.
    a.batch_execute("BEGIN").await?;
    let mine = hook_created(&a, "wrun_a", "tok").await?;
    ensure!(mine.as_ref().map(|o| o["hook"]["token"] == json!("tok")).unwrap_or(false), "{mine:?}");
    let b2 = b.clone();
    let theirs = tokio::spawn(async move { hook_created(&b2, "wrun_b", "tok").await });
    a.batch_execute("COMMIT").await?;
    let theirs = theirs.await??.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(theirs["event"]["eventType"] == json!("hook_conflict"), "{theirs}");
    ensure!(theirs["event"]["eventData"] == json!({"token": "tok", "conflictingRunId": "wrun_a"}));
    ensure!(theirs.get("hook").is_none());

    let check = db.superuser().await?;
    let live: i64 =
        check.query_one("SELECT count(*) FROM workflow.hooks WHERE token = 'tok' AND status <> 'disposed'", &[]).await?.get(0);
    let conflicts: i64 =
        check.query_one("SELECT count(*) FROM workflow.events WHERE event_type = 'hook_conflict'", &[]).await?.get(0);
    ensure!((live, conflicts) == (1, 1), "live hooks {live}, conflicts {conflicts}");

    // If the holder rolls back instead, the waiting claim wins the token. (Both runs exist first:
    // an open transaction that created a run holds the app's run-quota counter until it ends.)
    create_run(&a, "wrun_c").await?;
    create_run(&b, "wrun_d").await?;
    a.batch_execute("BEGIN").await?;
    hook_created(&a, "wrun_c", "tok2").await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let b3 = b.clone();
    let waiting = tokio::spawn(async move { hook_created(&b3, "wrun_d", "tok2").await });
    a.batch_execute("ROLLBACK").await?;
    let won = waiting.await??.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(won["hook"]["runId"] == json!("wrun_d"), "{won}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_token_claims_across_many_runs_keep_one_holder() -> Result<()> {
    let db = TestDb::new().await?;
    let setup = db.session("default").await?;
    let mut sessions = Vec::new();
    for i in 0..4 {
        create_run(&setup, &format!("wrun_t{i}")).await?;
        sessions.push(std::sync::Arc::new(db.session("default").await?));
    }
    for round in 0..15 {
        let token = format!("token_{round}");
        let mut tasks = Vec::new();
        for (i, c) in sessions.iter().enumerate() {
            let (c, token) = (c.clone(), token.clone());
            let body = json!({"eventType": "hook_created", "correlationId": format!("h{round}"), "eventData": {"token": token}});
            tasks.push(tokio::spawn(async move { event_create(&c, &format!("wrun_t{i}"), json!({}), body).await }));
        }
        let mut hooks = 0;
        let mut conflicts = 0;
        for t in tasks {
            let out = t.await??.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            match out["event"]["eventType"].as_str() {
                Some("hook_created") => hooks += 1,
                Some("hook_conflict") => conflicts += 1,
                other => anyhow::bail!("unexpected {other:?}"),
            }
        }
        ensure!((hooks, conflicts) == (1, 3), "round {round}: {hooks} hooks, {conflicts} conflicts");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resilient_starts_create_the_run_once() -> Result<()> {
    let db = TestDb::new().await?;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = db.session("default").await?;
        tasks.push(tokio::spawn(async move {
            let body = json!({"eventType": "run_started", "eventData": {"deploymentId": "v1", "workflowName": "wf", "input": 1}});
            event_create(&c, "wrun_resilient", json!({}), body).await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let out = t.await??.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        ensure!(out["run"]["status"] == json!("running"));
        if !out["event"].is_null() {
            created += 1;
        }
    }
    ensure!(created == 1, "{created} sessions wrote events");
    let check = db.superuser().await?;
    let types: Vec<String> = check
        .query("SELECT event_type FROM workflow.events WHERE run_id = 'wrun_resilient' ORDER BY slot", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(types == ["run_created", "run_started"], "{types:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_run_creation_never_overshoots_max_runs() -> Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    su.batch_execute("INSERT INTO workflow.quotas (application_id, max_runs) SELECT application_id, 5 FROM workflow.applications WHERE label = 'default'")
        .await?;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let c = db.session("default").await?;
        tasks.push(tokio::spawn(async move { create_run_result(&c, &format!("wrun_q{i}")).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await?? {
            Ok(_) => ok += 1,
            Err(e) => ensure!((e.sqlstate.as_str(), e.message.as_str()) == ("WF429", "Run quota exceeded"), "{e:?}"),
        }
    }
    ensure!(ok == 5, "{ok} runs admitted under maxRuns = 5");
    // Finishing a run frees its place at once.
    let c = db.session("default").await?;
    let any: String = su.query_one("SELECT run_id FROM workflow.runs LIMIT 1", &[]).await?.get(0);
    event_create(&c, &any, json!({}), json!({"eventType": "run_cancelled"})).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(create_run_result(&c, "wrun_after").await?.is_ok());
    ensure!(create_run_result(&c, "wrun_over").await?.is_err());
    Ok(())
}

async fn create_run_result(c: &tokio_postgres::Client, id: &str) -> Result<std::result::Result<Value, pgworld_it::WfErr>> {
    event_create(c, id, json!({}), json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf"}}))
        .await
}
