//! Per-pod limits in the claim, session by session: a pod's `maxConcurrency` holds across
//! sessions (so across dispatchers), open and aborted claims included; the oldest messages go to
//! the pods with room; every way a lease ends gives its slot back, and a slot whose lease ended
//! behind pgworld's back is found and freed; leases open across a server restart keep their
//! slots. (Real dispatchers and HTTP: dispatcher/tests/backpressure.rs.)

use anyhow::{ensure, Result};
use pgworld_it::cluster::PrivateCluster;
use pgworld_it::{enqueue_steps, register_limited, TestDb};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_postgres::Client;

fn endpoints(host: &str) -> Value {
    json!({"workflow": format!("http://{host}/flow"), "step": format!("http://{host}/step"), "webhook": format!("http://{host}/hook")})
}

/// (lease, message, URL) of each claimed message.
async fn claim(c: &Client, max: i32, lease_seconds: f64) -> Result<Vec<(String, i64, String)>> {
    let rows = c
        .query("SELECT lease_id::text, id, url FROM workflow.dispatch_claim('it', $1, $2) ORDER BY id", &[&max, &lease_seconds])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

async fn delivered(c: &Client, lease: &str) -> Result<bool> {
    Ok(c.query_one("SELECT workflow.dispatch_complete($1::text::uuid, '{\"outcome\": \"delivered\"}')", &[&lease]).await?.get(0))
}

async fn leased(su: &Client) -> Result<i64> {
    Ok(su.query_one("SELECT count(*) FROM workflow.messages WHERE state = 'leased'", &[]).await?.get(0))
}

#[tokio::test]
async fn the_library_is_preloaded_here() -> Result<()> {
    // Everything below needs the shared-memory table; without it the limits are not enforced.
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    let preload: String = su.query_one("SHOW shared_preload_libraries", &[]).await?.get(0);
    ensure!(preload.contains("pgworld"), "the test cluster preloads pgworld: {preload:?}");
    Ok(())
}

#[tokio::test]
async fn a_full_pod_gets_nothing_more_from_any_session_until_a_lease_ends() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let su = db.superuser().await?;
    register_limited(&c, "pod-1", "v1", endpoints("pod-1"), 2).await?;
    enqueue_steps(&c, 6).await?;
    let a = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let b = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;

    a.batch_execute("BEGIN").await?;
    let first = claim(&a, 10, 60.0).await?;
    ensure!(first.len() == 2, "a pod of 2 gets 2: {first:?}");
    ensure!(claim(&b, 10, 60.0).await?.is_empty(), "another session sees the slots of a claim not yet committed");
    a.batch_execute("COMMIT").await?;
    ensure!(claim(&b, 10, 60.0).await?.is_empty(), "nor after it committed");
    ensure!(leased(&su).await? == 2);

    ensure!(delivered(&b, &first[0].0).await?, "an outcome from another session");
    let next = claim(&b, 10, 60.0).await?;
    ensure!(next.len() == 1 && next[0].2 == "http://pod-1/step", "one slot came back: {next:?}");

    // An aborted claim gives its slot back: the same message is claimed again.
    ensure!(delivered(&a, &next[0].0).await?);
    b.batch_execute("BEGIN").await?;
    let rolled_back = claim(&b, 10, 60.0).await?;
    b.batch_execute("ROLLBACK").await?;
    let again = claim(&b, 10, 60.0).await?;
    ensure!(rolled_back.len() == 1 && again.len() == 1 && again[0].1 == rolled_back[0].1, "{rolled_back:?} then {again:?}");

    // An aborted outcome keeps the slot: the lease is still held.
    a.batch_execute("BEGIN").await?;
    ensure!(delivered(&a, &again[0].0).await?);
    a.batch_execute("ROLLBACK").await?;
    ensure!(claim(&a, 10, 60.0).await?.is_empty(), "the lease whose outcome rolled back still holds its slot");

    // The batch path of plain deliveries frees slots too.
    let held: Vec<String> = su
        .query("SELECT lease_id::text FROM workflow.messages WHERE state = 'leased'", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(held.len() == 2, "{held:?}");
    let n: i64 = a.query_one("SELECT workflow.dispatch_delivered($1::text[]::uuid[])", &[&held]).await?.get(0);
    ensure!(n == 2);
    ensure!(claim(&a, 10, 60.0).await?.len() == 2, "both slots came back");
    ensure!(leased(&su).await? == 2, "never more than 2 leased");
    Ok(())
}

#[tokio::test]
async fn the_oldest_messages_go_to_the_pods_with_room() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    register_limited(&c, "small", "v1", endpoints("small"), 1).await?;
    register_limited(&c, "large", "v1", endpoints("large"), 3).await?;
    let ids = enqueue_steps(&c, 6).await?;
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let got = claim(&d, 10, 60.0).await?;
    let claimed: Vec<i64> = got.iter().map(|g| g.1).collect();
    ensure!(claimed == ids[..4], "the four oldest: {claimed:?} of {ids:?}");
    let to = |host: &str| got.iter().filter(|g| g.2.contains(host)).count();
    ensure!(to("//small/") == 1 && to("//large/") == 3, "{got:?}");
    ensure!(claim(&d, 10, 60.0).await?.is_empty(), "both pods are full");
    Ok(())
}

#[tokio::test]
async fn an_expired_lease_gives_its_slot_back() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    register_limited(&c, "pod-1", "v1", endpoints("pod-1"), 1).await?;
    let ids = enqueue_steps(&c, 2).await?;
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let first = claim(&d, 10, 0.2).await?;
    ensure!(first.len() == 1 && first[0].1 == ids[0], "{first:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The claim expires the lease (the message retries later) and fills the slot it freed.
    let second = claim(&d, 10, 60.0).await?;
    ensure!(second.len() == 1 && second[0].1 == ids[1], "{second:?}");
    Ok(())
}

#[tokio::test]
async fn a_slot_whose_lease_ended_behind_pgworlds_back_is_freed() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let su = db.superuser().await?;
    register_limited(&c, "pod-1", "v1", endpoints("pod-1"), 1).await?;
    enqueue_steps(&c, 2).await?;
    let d = db.session_as(pgworld_it::DISPATCHER_ROLE).await?;
    let first = claim(&d, 10, 3600.0).await?;
    ensure!(first.len() == 1);
    // An operator's UPDATE ends the lease without going through pgworld's functions.
    su.execute("UPDATE workflow.messages SET state = 'delivered', lease_id = NULL WHERE id = $1", &[&first[0].1]).await?;
    ensure!(claim(&d, 10, 60.0).await?.is_empty(), "the slot is still taken");
    // Slots are checked against the leases once they are 10 s old.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if claim(&d, 10, 60.0).await?.len() == 1 {
            return Ok(());
        }
        ensure!(tokio::time::Instant::now() < deadline, "the stale slot was never freed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn open_leases_keep_their_slots_across_a_server_restart() -> Result<()> {
    let (cluster, admin) = PrivateCluster::with_pgworld().await?;
    register_limited(&admin, "pod-1", "v1", endpoints("pod-1"), 1).await?;
    enqueue_steps(&admin, 2).await?;
    let d = pgworld_it::connect(&cluster.url(pgworld_it::DISPATCHER_ROLE)).await?;
    let first = claim(&d, 10, 3600.0).await?;
    ensure!(first.len() == 1);
    drop(d);
    // The restart empties shared memory; the first claim after it reads the open lease back in.
    cluster.restart()?;
    let d = pgworld_it::connect(&cluster.url(pgworld_it::DISPATCHER_ROLE)).await?;
    ensure!(claim(&d, 10, 60.0).await?.is_empty(), "the lease open before the restart still holds the pod's one slot");
    ensure!(delivered(&d, &first[0].0).await?);
    ensure!(claim(&d, 10, 60.0).await?.len() == 1, "its outcome freed the slot");
    Ok(())
}
