//! pgworld-dispatcher: the pgworld sidecar. It delivers queue messages to the pods of their
//! deployment version (dispatch), runs maintenance, and serves health checks; the REST façade
//! builds on the same pool.
#![forbid(unsafe_code)]

mod api;
mod config;
mod delivery;
mod dispatch;
mod listener;

use anyhow::{Context, Result};
use config::Config;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::time::Duration;
use tokio_postgres::NoTls;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    if let Err(e) = run().await {
        eprintln!("pgworld-dispatcher: {e:#}");
        std::process::exit(2);
    }
}

async fn run() -> Result<()> {
    let config = Config::from_env_and_args(|k| std::env::var(k).ok(), std::env::args().skip(1))?;
    let pg: tokio_postgres::Config = config.database_url.parse()?;
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(manager)
        .max_size(config.pool_size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("building the connection pool")?;
    // Fail fast on a wrong URL or password rather than serving a dispatcher that can never work.
    let client = pool.get().await.context("connecting to the database")?;
    drop(client);

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let dispatcher = config.dispatch.enabled.then(|| {
        let pg: tokio_postgres::Config = config.database_url.parse().unwrap_or_default();
        tokio::spawn(dispatch::Dispatcher::run(config.dispatch.clone(), pool.clone(), pg, stop.clone()))
    });
    let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(listen = %config.listen, api = config.api_enabled, dispatch = config.dispatch.enabled, "pgworld-dispatcher serving");
    let mut http_stop = stop.clone();
    let server = axum::serve(listener, api::app(api::AppState { pool })).with_graceful_shutdown(async move {
        let _ = http_stop.changed().await;
    });
    let server = tokio::spawn(async move { server.await });
    shutdown_signal().await;
    tracing::info!("shutting down: no new claims, draining deliveries");
    let _ = stop_tx.send(true);
    if let Some(d) = dispatcher {
        match d.await {
            Ok(Err(e)) => tracing::error!(error = %e, "dispatcher failed"),
            Err(e) => tracing::error!(error = %e, "dispatcher task failed"),
            Ok(Ok(())) => {}
        }
    }
    server.await.context("HTTP server task")?.context("serving HTTP")?;
    tracing::info!("pgworld-dispatcher stopped");
    Ok(())
}

/// An error with its causes, for logs: tokio-postgres puts the server's message in the source.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn shutdown_signal() {
    let ctrl_c = async {
        // Without a Ctrl-C handler, only SIGTERM can stop us: wait forever on this branch.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
