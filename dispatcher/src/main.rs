//! pgworld-dispatcher: the pgworld sidecar. It serves the REST façade (each route one
//! `workflow.*` call), delivers queue messages to the pods of their deployment version, runs
//! maintenance, and exposes health and Prometheus metrics.
#![forbid(unsafe_code)]

mod api;
mod auth;
mod backoff;
mod config;
mod delivery;
mod dispatch;
mod errors;
mod hub;
mod listener;
mod metrics;
mod routes;
mod serve;

use anyhow::{Context, Result};
use config::Config;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
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
        // The most recently used connection first: claims mostly land on one backend, whose
        // scan floors are then current (extension claim.rs).
        .queue_mode(deadpool_postgres::QueueMode::Lifo)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("building the connection pool")?;
    // Fail fast on a wrong URL or password rather than serving a dispatcher that can never work.
    let client = pool.get().await.context("connecting to the database")?;
    drop(client);

    let metrics = Arc::new(metrics::Metrics::default());
    let auth = match &config.tenancy {
        config::Tenancy::Single { app } => {
            tokio::spawn(provision_until_done(pool.clone(), app.clone()));
            auth::Auth::Single { app: app.clone() }
        }
        config::Tenancy::Authenticated { k8s, tokens } => auth::Auth::Authenticated {
            k8s: match k8s {
                Some(settings) => Some(Box::new(auth::K8sAuth::new(settings.clone(), Arc::clone(&metrics))?)),
                None => None,
            },
            tokens: tokens.as_ref().map(|t| auth::TokenAuth::new(t, Arc::clone(&metrics))),
        },
    };
    let hub = Arc::new(hub::StreamHub::default());
    let state = api::AppState {
        pool: pool.clone(),
        auth: Arc::new(auth),
        metrics: Arc::clone(&metrics),
        hub: Arc::clone(&hub),
        api_enabled: config.api_enabled,
    };

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let pg: tokio_postgres::Config = config.database_url.parse()?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let listen = tokio::spawn(listener::run(pg, Arc::clone(&wake), hub, stop.clone()));
    let dispatcher = config.dispatch.enabled.then(|| {
        tokio::spawn(dispatch::Dispatcher::run(config.dispatch.clone(), pool.clone(), wake, Arc::clone(&metrics), stop.clone()))
    });
    let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    if config.open_to_all {
        tracing::warn!(
            listen = %config.listen,
            "PGWORLD_ALLOW_UNAUTHENTICATED is set: the façade is served WITHOUT AUTHENTICATION on a non-loopback \
             address; anyone who can reach it can read every run and fetch its encryption keys"
        );
    }
    tracing::info!(listen = %config.listen, api = config.api_enabled, dispatch = config.dispatch.enabled,
                   mode = state.auth.mode(), "pgworld-dispatcher serving");
    let mut servers = vec![tokio::spawn(serve::run(listener, api::app(state.clone()), config.connections, stop.clone()))];
    if let Some(port) = config.metrics_port.filter(|p| *p != config.listen.port()) {
        let addr = std::net::SocketAddr::new(config.listen.ip(), port);
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => servers.push(tokio::spawn(serve::run(l, api::ops(state), config.connections, stop.clone()))),
            Err(e) => tracing::warn!(%addr, error = %e, "metrics port unavailable; /metrics stays on the main port"),
        }
    }
    shutdown_signal().await;
    tracing::info!("shutting down: no new claims, draining deliveries");
    // An error means every receiver has stopped already, which is what this asks for.
    let _all_stopped = stop_tx.send(true);
    if let Some(d) = dispatcher {
        match d.await {
            Ok(Err(e)) => tracing::error!(error = %e, "dispatcher failed"),
            Err(e) => tracing::error!(error = %e, "dispatcher task failed"),
            Ok(Ok(())) => {}
        }
    }
    listen.abort();
    for s in servers {
        s.await.context("HTTP server task")?;
    }
    tracing::info!("pgworld-dispatcher stopped");
    Ok(())
}

/// Single-tenant start-up creates the app (and its encryption secret) if it is new. Until that
/// works (the extension may be installed after the sidecar starts) it retries, and `/ready`
/// reports why requests cannot be served yet.
async fn provision_until_done(pool: Pool, app: String) {
    let mut pause = Duration::from_secs(1);
    loop {
        match provision(&pool, &app).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %format!("{e:#}"), retry_in = ?pause, "single-tenant app not provisioned yet"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

async fn provision(pool: &Pool, app: &str) -> Result<()> {
    let client = pool.get().await.context("connecting to the database")?;
    client
        .query_one(
            "SELECT CASE WHEN s.a IS NOT NULL THEN workflow.app_provision(jsonb_build_object('appId', $1::text)) END \
             FROM (SELECT pg_catalog.set_config('workflow.admin', 'on', true) AS a) AS s",
            &[&app],
        )
        .await
        .with_context(|| format!("provisioning the single-tenant app {app:?} (is the pgworld extension installed?)"))?;
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
