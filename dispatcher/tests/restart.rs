//! PostgreSQL restarted under load: the dispatcher loses its pool and its LISTEN connection,
//! reconnects, and delivers every message that was accepted. Runs on a private cluster.

use anyhow::{ensure, Result};
use pgworld_it::cluster::PrivateCluster;
use pgworld_it::process::DispatcherProc;
use pgworld_it::receiver::Receiver;
use pgworld_it::{connect, enqueue, register, wait_until, DISPATCHER_ROLE};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_under_load_loses_no_message() -> Result<()> {
    let (cluster, admin) = PrivateCluster::with_pgworld().await?;
    let receiver = Receiver::start().await?;
    register(&admin, "pod", "v1", receiver.endpoints("p")).await?;
    let _dispatcher = DispatcherProc::spawn(
        env!("CARGO_BIN_EXE_pgworld-dispatcher"),
        &cluster.url(DISPATCHER_ROLE),
        "restart",
        &[("PGWORLD_POLL_INTERVAL_MS", "500")],
    )?;

    // A producer enqueues for six seconds, reconnecting whenever the server goes away, and
    // keeps the ids of the messages whose enqueue it saw succeed.
    let url = cluster.url("postgres");
    let producer = tokio::spawn(async move {
        let mut accepted = BTreeSet::new();
        let mut refused = 0usize;
        let until = Instant::now() + Duration::from_secs(6);
        let mut client = None;
        let mut i = 0u64;
        while Instant::now() < until {
            let Some(c) = pgworld_it::reconnect(&mut client, &url).await else { continue };
            i += 1;
            match enqueue(c, json!({"queueName": "q", "message": i, "deploymentId": "v1"})).await {
                Ok(Ok(out)) => {
                    accepted.insert(out["messageId"].as_str().unwrap_or_default().to_owned());
                }
                _ => {
                    refused += 1;
                    client = None;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (accepted, refused)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarted = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || cluster.restart().map(|()| cluster)).await??;
    eprintln!("PostgreSQL restarted in {:?}", restarted.elapsed());
    let (accepted, refused) = producer.await?;
    ensure!(accepted.len() > 100, "the producer kept enqueueing around the restart: {} accepted", accepted.len());
    eprintln!("{} messages accepted, {refused} enqueues failed during the restart", accepted.len());

    let check = connect(&cluster.url("postgres")).await?;
    wait_until(&check, "SELECT count(*) FROM workflow.messages WHERE state <> 'delivered'", 0i64, Duration::from_secs(60))
        .await?;
    let delivered: BTreeSet<String> = receiver.deliveries().iter().map(|d| d.message_id()).collect();
    let missing: Vec<_> = accepted.difference(&delivered).collect();
    ensure!(missing.is_empty(), "accepted but never delivered: {missing:?}");
    let stored: i64 = check.query_one("SELECT count(*) FROM workflow.messages", &[]).await?.get(0);
    ensure!(stored as usize >= accepted.len(), "{stored} stored");
    drop(cluster);
    Ok(())
}
