//! Slow and hostile HTTP clients: a connection that never completes its request head is closed
//! after the header timeout, past the connection cap a new connection is closed at once, and the
//! dispatcher answers again as soon as they are gone.

use anyhow::{ensure, Result};
use pgworld_it::process::DispatcherProc;
use pgworld_it::TestDb;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request on a fresh connection; the response, or "" when the server closed the
/// connection without answering.
async fn ask(addr: &str, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut out = Vec::new();
    // A reset counts as closed.
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_closed_and_capped() -> Result<()> {
    let db = TestDb::new().await?;
    const CAP: usize = 64;
    let proc = DispatcherProc::spawn(
        env!("CARGO_BIN_EXE_pgworld-dispatcher"),
        &db.dispatcher_url(),
        "connections",
        &[
            ("PGWORLD_MODE", "single"),
            ("PGWORLD_METRICS_PORT", "0"),
            ("PGWORLD_HEADER_TIMEOUT_S", "5"),
            ("PGWORLD_MAX_CONNECTIONS", "64"),
        ],
    )?;
    let addr = format!("127.0.0.1:{}", proc.port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ask(&addr, "/status").await.unwrap_or_default().starts_with("HTTP/1.1 200") {
        ensure!(tokio::time::Instant::now() < deadline, "the dispatcher did not start: {}", proc.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every slot taken by a client that sends half a request head and stops.
    let mut stalled = Vec::new();
    for _ in 0..CAP {
        let mut s = TcpStream::connect(&addr).await?;
        s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nX-a: ").await?;
        stalled.push(s);
    }
    // One more is closed at once, unanswered.
    ensure!(ask(&addr, "/status").await?.is_empty(), "past the cap a connection is closed without an answer");

    // The stalled ones are closed by the server once the header timeout passes.
    for mut s in stalled {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut rest)).await;
        ensure!(closed.is_ok(), "a stalled connection was still open 30 s later");
    }
    let answer = ask(&addr, "/status").await?;
    ensure!(answer.starts_with("HTTP/1.1 200"), "the dispatcher answers again: {answer:?}");
    Ok(())
}
