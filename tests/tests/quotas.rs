//! `maxRuns` with real sessions: an admission counts before its transaction commits, an abort or
//! a savepoint rolled back gives its places back, a run's end frees its place only when it
//! commits, counts survive a server restart, and without the preloaded library the same rules
//! hold the serialized way. (`concurrency.rs` races twelve creators against `maxRuns` 5.)

use anyhow::{ensure, Result};
use pgworld_it::cluster::PrivateCluster;
use pgworld_it::{event_create, TestDb, WfErr};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

async fn set_max_runs(su: &Client, n: i32) -> Result<()> {
    su.execute(
        "INSERT INTO workflow.quotas (application_id, max_runs) SELECT application_id, $1 FROM workflow.applications WHERE label = 'default' \
         ON CONFLICT (application_id) DO UPDATE SET max_runs = EXCLUDED.max_runs",
        &[&n],
    )
    .await?;
    Ok(())
}

async fn create(c: &Client, id: &str) -> Result<std::result::Result<Value, WfErr>> {
    event_create(c, id, json!({}), json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf"}}))
        .await
}

fn refused(r: &std::result::Result<Value, WfErr>) -> bool {
    matches!(r, Err(e) if e.sqlstate == "WF429" && e.message == "Run quota exceeded")
}

async fn cancel(c: &Client, id: &str) -> Result<()> {
    event_create(c, id, json!({}), json!({"eventType": "run_cancelled"})).await?.map_err(|e| anyhow::anyhow!("cancel: {e:?}"))?;
    Ok(())
}

/// The counter rows (what a restart reads back) agree with the runs themselves.
async fn counters_agree(su: &Client) -> Result<()> {
    let row = su
        .query_one(
            "SELECT (SELECT coalesce(sum(active), 0)::bigint FROM workflow.run_counters), \
                    (SELECT count(*) FROM workflow.runs WHERE status IN ('pending', 'running'))",
            &[],
        )
        .await?;
    let (counted, active): (i64, i64) = (row.get(0), row.get(1));
    ensure!(counted == active, "counter rows say {counted} active runs, the runs table {active}");
    Ok(())
}

#[tokio::test]
async fn an_admission_counts_before_it_commits_and_its_abort_gives_the_place_back() -> Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    set_max_runs(&su, 1).await?;
    let (a, b) = (db.session("default").await?, db.session("default").await?);
    a.batch_execute("BEGIN").await?;
    ensure!(create(&a, "wrun_qa1").await?.is_ok());
    // The other creator is refused at once: it neither waits for the first to commit nor
    // overshoots.
    let start = Instant::now();
    ensure!(refused(&create(&b, "wrun_qb1").await?), "a second run under maxRuns 1");
    ensure!(start.elapsed() < Duration::from_secs(5), "the refusal waited for the open transaction");
    a.batch_execute("ROLLBACK").await?;
    ensure!(create(&b, "wrun_qb2").await?.is_ok(), "the aborted admission kept its place");
    ensure!(refused(&create(&a, "wrun_qa2").await?));
    counters_agree(&su).await
}

#[tokio::test]
async fn runs_created_in_a_savepoint_that_rolls_back_give_their_places_back() -> Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    set_max_runs(&su, 2).await?;
    let c = db.session("default").await?;
    c.batch_execute("BEGIN; SAVEPOINT outer_sp").await?;
    ensure!(create(&c, "wrun_sp1").await?.is_ok());
    c.batch_execute("SAVEPOINT inner_sp").await?;
    ensure!(create(&c, "wrun_sp2").await?.is_ok());
    // Released into its parent, then rolled back with it.
    c.batch_execute("RELEASE inner_sp; ROLLBACK TO outer_sp").await?;
    ensure!(create(&c, "wrun_sp3").await?.is_ok());
    c.batch_execute("COMMIT").await?;
    let other = db.session("default").await?;
    ensure!(create(&other, "wrun_sp4").await?.is_ok(), "the rolled-back runs kept their places");
    ensure!(refused(&create(&other, "wrun_sp5").await?));
    // A refused creation caught by the caller's own savepoint leaves the count as it was.
    c.batch_execute("BEGIN; SAVEPOINT s").await?;
    ensure!(refused(&create(&c, "wrun_sp6").await?));
    c.batch_execute("ROLLBACK TO s; COMMIT").await?;
    cancel(&other, "wrun_sp4").await?;
    ensure!(create(&other, "wrun_sp7").await?.is_ok());
    counters_agree(&su).await
}

#[tokio::test]
async fn a_runs_end_frees_its_place_only_when_it_commits() -> Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    set_max_runs(&su, 1).await?;
    let c = db.session("default").await?;
    ensure!(create(&c, "wrun_end1").await?.is_ok());
    c.batch_execute("BEGIN; SAVEPOINT s").await?;
    cancel(&c, "wrun_end1").await?;
    c.batch_execute("ROLLBACK TO s; COMMIT").await?;
    ensure!(refused(&create(&c, "wrun_end2").await?), "a cancel that rolled back freed the place");
    c.batch_execute("BEGIN").await?;
    cancel(&c, "wrun_end1").await?;
    let other = db.session("default").await?;
    ensure!(refused(&create(&other, "wrun_end3").await?), "an uncommitted end freed the place");
    c.batch_execute("COMMIT").await?;
    ensure!(create(&other, "wrun_end3").await?.is_ok(), "the committed end kept the place");
    counters_agree(&su).await
}

#[tokio::test]
async fn counts_survive_a_server_restart() -> Result<()> {
    let (cluster, admin) = PrivateCluster::with_pgworld().await?;
    set_max_runs(&admin, 2).await?;
    ensure!(create(&admin, "wrun_r1").await?.is_ok() && create(&admin, "wrun_r2").await?.is_ok());
    drop(admin);
    cluster.restart()?;
    let c = pgworld_it::connect(&cluster.url("postgres")).await?;
    c.batch_execute("SET workflow.app_id = 'default'").await?;
    ensure!(refused(&create(&c, "wrun_r3").await?), "the restart forgot the two active runs");
    cancel(&c, "wrun_r1").await?;
    ensure!(create(&c, "wrun_r3").await?.is_ok());
    counters_agree(&c).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_preloaded_library_admissions_serialize_and_stay_exact() -> Result<()> {
    let (cluster, admin) = PrivateCluster::with_pgworld_preloaded(false).await?;
    let preload: String = admin.query_one("SHOW shared_preload_libraries", &[]).await?.get(0);
    ensure!(!preload.contains("pgworld"), "{preload}");
    set_max_runs(&admin, 5).await?;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let c = pgworld_it::connect(&cluster.url("postgres")).await?;
        c.batch_execute("SET workflow.app_id = 'default'").await?;
        tasks.push(tokio::spawn(async move { create(&c, &format!("wrun_s{i}")).await }));
    }
    let mut admitted = 0;
    for t in tasks {
        let r = t.await??;
        ensure!(r.is_ok() || refused(&r), "{r:?}");
        admitted += usize::from(r.is_ok());
    }
    ensure!(admitted == 5, "{admitted} runs admitted under maxRuns 5");
    let any: String = admin.query_one("SELECT run_id FROM workflow.runs LIMIT 1", &[]).await?.get(0);
    cancel(&admin, &any).await?;
    ensure!(create(&admin, "wrun_s_after").await?.is_ok());
    ensure!(refused(&create(&admin, "wrun_s_over").await?));
    counters_agree(&admin).await?;
    // The same database on a server that preloads the library starts from the counter rows.
    std::fs::write(
        cluster.dir.join("data/postgresql.conf"),
        std::fs::read_to_string(cluster.dir.join("data/postgresql.conf"))? + "shared_preload_libraries = 'pgworld'\n",
    )?;
    drop(admin);
    cluster.restart()?;
    let c = pgworld_it::connect(&cluster.url("postgres")).await?;
    c.batch_execute("SET workflow.app_id = 'default'").await?;
    ensure!(refused(&create(&c, "wrun_s_preloaded").await?), "five runs are still active");
    Ok(())
}
