//! pgworld-dispatcher: the pgworld sidecar. This version serves health checks over a pooled
//! database connection; the queue dispatcher and the REST façade build on it.
#![forbid(unsafe_code)]

mod api;
mod config;

use anyhow::{Context, Result};
use config::Config;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::time::Duration;
use tokio_postgres::NoTls;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
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

    let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(listen = %config.listen, "pgworld-dispatcher serving");
    axum::serve(listener, api::app(api::AppState { pool }))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("pgworld-dispatcher stopped");
    Ok(())
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
