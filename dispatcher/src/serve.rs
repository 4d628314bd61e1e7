//! The HTTP listener: hyper connections with bounds a slow or hostile client cannot stretch. A
//! connection whose request head is not complete within the header timeout is closed (on a
//! kept-alive connection the next head must come within it too), and past the connection cap a
//! new connection is closed at once, so file descriptors, and with them the database and
//! delivery connections, cannot be exhausted. Shutdown waits for open requests.

use crate::config::ConnectionLimits;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt as _;

/// How long a shutdown waits for open requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A trailing slash is not significant (http-api.md §1.1): `/x/` is served as `/x`.
fn normalize(req: Request<Incoming>) -> Request<Body> {
    let mut req = req.map(Body::new);
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Serves `router` on `listener` until `stop` changes.
pub async fn run(listener: TcpListener, router: axum::Router, limits: ConnectionLimits, mut stop: watch::Receiver<bool>) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            tracing::warn!(max = limits.max_connections, "connection limit reached; closing a new connection");
            drop(stream);
            continue;
        };
        // Only latency depends on it: a socket that refuses TCP_NODELAY is still served.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set: {e}");
        }
        let service = TowerToHyperService::new(router.clone().map_request(normalize));
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    // Open requests get a bounded time to finish; a live stream read would otherwise hold the
    // shutdown forever.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "closing connections still open at shutdown");
    }
}
