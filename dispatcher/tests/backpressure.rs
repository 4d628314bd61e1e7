//! Backpressure: a pod registers how many deliveries it takes at once (`maxConcurrency`) and no
//! dispatcher, nor several together, ever has more open to it; the rest wait in order, and a
//! version's pods with room go first. Real dispatcher binaries, real HTTP, one real cluster.

use anyhow::{ensure, Result};
use pgworld_it::process::DispatcherProc;
use pgworld_it::receiver::{Receiver, Reply};
use pgworld_it::{enqueue_steps, msg_num, register_limited, TestDb};
use serde_json::json;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_pgworld-dispatcher");
const SLOW: Duration = Duration::from_millis(300);

async fn slow_receiver() -> Result<Receiver> {
    let r = Receiver::start().await?;
    r.script(|_| Reply::ok().after(SLOW));
    Ok(r)
}

/// Every delivery came in due order, give or take the `limit` open at once.
fn in_order(delivered: &[i64], enqueued: &[i64], limit: usize) -> Result<()> {
    for (k, id) in delivered.iter().enumerate() {
        let rank = enqueued.iter().position(|e| e == id).unwrap_or(usize::MAX);
        ensure!(rank < k + limit, "message {id} (enqueued {rank}th) delivered {k}th: {delivered:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_never_gets_more_than_its_limit_and_every_message_arrives_in_order() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let r = slow_receiver().await?;
    register_limited(&c, "pod", "v1", r.endpoints("p"), 2).await?;
    let enqueued = enqueue_steps(&c, 10).await?;
    let _d = DispatcherProc::spawn(BIN, &db.dispatcher_url(), "limit-one", &[])?;
    let got = r.wait_for(10, Duration::from_secs(30)).await?;
    ensure!(r.most_concurrent() == 2, "at most 2 open at once, and 2 were: {}", r.most_concurrent());
    let delivered: Vec<i64> = got.iter().map(|d| msg_num(&d.message_id())).collect();
    in_order(&delivered, &enqueued, 2)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(r.count() == 10, "each message once: {}", r.count());
    // A limit outside 1..=256 is the caller's error.
    for bad in [json!(0), json!(257), json!("2"), json!(1.5)] {
        let body = json!({"podId": "x", "deploymentVersion": "v1", "endpoints": r.endpoints("x"), "maxConcurrency": bad});
        let e = pgworld_it::call(&c, "SELECT workflow.handler_register($1)", &[&body]).await?;
        ensure!(e.as_ref().is_err_and(|e| e.sqlstate == "WF400"), "maxConcurrency {bad}: {e:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_share_one_pods_limit() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let r = slow_receiver().await?;
    register_limited(&c, "pod", "v1", r.endpoints("p"), 2).await?;
    let _a = DispatcherProc::spawn(BIN, &db.dispatcher_url(), "limit-a", &[])?;
    let _b = DispatcherProc::spawn(BIN, &db.dispatcher_url(), "limit-b", &[])?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    enqueue_steps(&c, 12).await?;
    r.wait_for(12, Duration::from_secs(30)).await?;
    ensure!(r.most_concurrent() == 2, "two dispatchers together kept to 2: {}", r.most_concurrent());
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(r.count() == 12, "each message once: {}", r.count());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versions_pods_with_room_go_first() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let (small, large) = (slow_receiver().await?, slow_receiver().await?);
    register_limited(&c, "small", "v1", small.endpoints("s"), 1).await?;
    register_limited(&c, "large", "v1", large.endpoints("l"), 3).await?;
    enqueue_steps(&c, 12).await?;
    let _d = DispatcherProc::spawn(BIN, &db.dispatcher_url(), "limit-pods", &[])?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while small.count() + large.count() < 12 {
        ensure!(tokio::time::Instant::now() < deadline, "delivered {} + {}", small.count(), large.count());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(
        small.most_concurrent() == 1 && large.most_concurrent() == 3,
        "{} and {}",
        small.most_concurrent(),
        large.most_concurrent()
    );
    ensure!(large.count() > small.count(), "the larger pod took more: {} vs {}", large.count(), small.count());
    Ok(())
}
