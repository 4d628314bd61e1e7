//! Test harness for pgworld's integration tier: a fresh database per test, cloned from the
//! `pgworld_template` database that `./pgw test` prepares on a real PostgreSQL 17 cluster.

pub mod cluster;
pub mod process;
pub mod receiver;

use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio_postgres::{Client, NoTls};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The admin URL of the test cluster (set by scripts/test.sh).
pub fn cluster_url() -> Result<String> {
    std::env::var("PGWORLD_TEST_URL").context("PGWORLD_TEST_URL is not set: run the integration tier through `./pgw test`")
}

fn with_db(url: &str, db: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => format!("{url}/{db}"),
    }
}

pub fn with_user(url: &str, user: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| rest.split_once('@').map(|(_, host)| (scheme, host))) {
        Some((scheme, host)) => format!("{scheme}://{user}@{host}"),
        None => url.to_owned(),
    }
}

/// The client in `slot`, connecting first if there is none; None (after a short pause) while
/// the server cannot be reached. For writers that must ride out a restart or a failover.
pub async fn reconnect<'a>(slot: &'a mut Option<Client>, url: &str) -> Option<&'a Client> {
    if slot.is_none() {
        *slot = connect(url).await.ok();
        if slot.is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    slot.as_ref()
}

pub async fn connect(url: &str) -> Result<Client> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection closed: {e}");
        }
    });
    Ok(client)
}

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    pub name: String,
}

/// Each test database is dropped when its test ends, so a run does not leave hundreds of them
/// for the kernel to write back (and for checkpoints to sync) while later tests run. The drop
/// runs on a thread of its own, as `Drop` cannot wait on async work; databases a killed run
/// leaves behind are dropped by the next `./pgw test`.
impl Drop for TestDb {
    fn drop(&mut self) {
        let (Ok(admin_url), name) = (cluster_url(), self.name.clone()) else { return };
        let worker = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(c) = connect(&admin_url).await {
                    let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        });
        let _ = worker.join();
    }
}

impl TestDb {
    pub async fn new() -> Result<TestDb> {
        TestDb::create("pgworld_template").await
    }

    /// A database with the extension installed at `version` by its own install script (not
    /// cloned from the template), as an operator running that release would have it.
    pub async fn with_extension_version(version: &str) -> Result<TestDb> {
        let db = TestDb::create("template0").await?;
        db.superuser().await?.batch_execute(&format!("CREATE EXTENSION pgworld VERSION '{version}'")).await?;
        Ok(db)
    }

    /// A database without the extension (a restore target).
    pub async fn empty() -> Result<TestDb> {
        TestDb::create("template0").await
    }

    async fn create(template: &str) -> Result<TestDb> {
        let admin_url = cluster_url()?;
        let name = format!("it_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), rand::random::<u16>());
        connect(&admin_url).await?.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}")).await?;
        Ok(TestDb { url: with_db(&admin_url, &name), name })
    }

    /// A superuser session acting for `app` (as the façade would, with workflow.app_id).
    pub async fn session(&self, app: &str) -> Result<Client> {
        let c = connect(&self.url).await?;
        c.execute("SELECT set_config('workflow.app_id', $1, false)", &[&app]).await?;
        Ok(c)
    }

    /// A session logged in as `role` (the cluster trusts loopback connections).
    pub async fn session_as(&self, role: &str) -> Result<Client> {
        connect(&with_user(&self.url, role)).await
    }

    /// Creates another app (as an admin would).
    pub async fn provision(&self, app: &str) -> Result<()> {
        let su = self.superuser().await?;
        call(&su, "SELECT workflow.app_provision($1)", &[&serde_json::json!({"appId": app})])
            .await?
            .map_err(|e| anyhow!("provisioning {app} failed: {e:?}"))?;
        Ok(())
    }

    /// A superuser session with no app selected, for setup and for checking raw tables.
    pub async fn superuser(&self) -> Result<Client> {
        connect(&self.url).await
    }
}

/// A `WFnnn` error as a test sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct WfErr {
    pub sqlstate: String,
    pub code: String,
    pub message: String,
}

pub fn wf_err(e: &tokio_postgres::Error) -> Result<WfErr> {
    let db = e.as_db_error().ok_or_else(|| anyhow!("not a database error: {e}"))?;
    Ok(WfErr {
        sqlstate: db.code().code().to_owned(),
        code: db.hint().unwrap_or_default().to_owned(),
        message: db.message().to_owned(),
    })
}

/// `workflow.event_create(run_id, query, body)`: Ok(response) or Err(the WF error).
pub async fn event_create(c: &Client, run_id: &str, query: Value, body: Value) -> Result<std::result::Result<Value, WfErr>> {
    match c.query_one("SELECT workflow.event_create($1, $2, $3)", &[&run_id, &query, &body]).await {
        Ok(row) => Ok(Ok(row.get(0))),
        Err(e) => Ok(Err(wf_err(&e)?)),
    }
}

/// Calls a `workflow.*` read function with jsonb/text arguments and returns its jsonb result.
pub async fn call(
    c: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<std::result::Result<Value, WfErr>> {
    match c.query_one(sql, params).await {
        Ok(row) => Ok(Ok(row.get(0))),
        Err(e) => Ok(Err(wf_err(&e)?)),
    }
}

/// Creates a run with a fixed id in the current session's app.
pub async fn create_run(c: &Client, run_id: &str) -> Result<Value> {
    let body = serde_json::json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf"}});
    event_create(c, run_id, serde_json::json!({}), body).await?.map_err(|e| anyhow!("run_created failed: {e:?}"))
}

/// The login role dispatchers use in tests: a member of pgworld_service, created by ./pgw test.
pub const DISPATCHER_ROLE: &str = "pgworld_it_dispatcher";

impl TestDb {
    /// This database's URL for the dispatcher's role.
    pub fn dispatcher_url(&self) -> String {
        with_user(&self.url, DISPATCHER_ROLE)
    }
}

/// Enqueues a JSON message in the session's app; Ok(response) or Err(the WF error).
pub async fn enqueue(c: &Client, envelope: Value) -> Result<std::result::Result<Value, WfErr>> {
    call(c, "SELECT workflow.queue_enqueue('{}', $1)", &[&envelope]).await
}

/// Enqueues `n` step messages for version `v1`; their numbers, in enqueue order.
pub async fn enqueue_steps(c: &Client, n: usize) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let out = enqueue(c, serde_json::json!({"queueName": "__wkf_step_s", "message": {"i": i}, "deploymentId": "v1"}))
            .await?
            .map_err(|e| anyhow!("enqueue: {e:?}"))?;
        ids.push(msg_num(out["messageId"].as_str().unwrap_or_default()));
    }
    Ok(ids)
}

/// Registers `pod` for `version` with the given endpoints in the session's app.
pub async fn register(c: &Client, pod: &str, version: &str, endpoints: Value) -> Result<()> {
    let body = serde_json::json!({"podId": pod, "deploymentVersion": version, "endpoints": endpoints});
    call(c, "SELECT workflow.handler_register($1)", &[&body]).await?.map_err(|e| anyhow!("register failed: {e:?}"))?;
    Ok(())
}

/// Registers `pod` for `version` taking at most `max_concurrency` deliveries at once.
pub async fn register_limited(c: &Client, pod: &str, version: &str, endpoints: Value, max_concurrency: i32) -> Result<()> {
    let body = serde_json::json!({"podId": pod, "deploymentVersion": version, "endpoints": endpoints,
                                  "maxConcurrency": max_concurrency});
    call(c, "SELECT workflow.handler_register($1)", &[&body]).await?.map_err(|e| anyhow!("register failed: {e:?}"))?;
    Ok(())
}

/// Numeric id of `msg_<n>`.
pub fn msg_num(public: &str) -> i64 {
    public.trim_start_matches("msg_").parse().unwrap_or_default()
}

/// Makes a waiting message due now and pings the dispatchers: the tests' clock, so retry
/// schedules and delays are checked by their stored times instead of by sleeping through them.
pub async fn advance_to_due(su: &Client, id: i64) -> Result<()> {
    su.execute(
        "UPDATE workflow.messages SET available_at = now() WHERE id = $1 AND state IN ('deferred', 'retrying', 'pending')",
        &[&id],
    )
    .await?;
    su.batch_execute("NOTIFY pgworld_queue").await?;
    Ok(())
}

/// Polls `sql` (one row, one column) until it returns `want` or `timeout` passes.
pub async fn wait_until<T>(c: &Client, sql: &str, want: T, timeout: std::time::Duration) -> Result<()>
where
    T: PartialEq + std::fmt::Debug + for<'a> tokio_postgres::types::FromSql<'a>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let got: T = c.query_one(sql, &[]).await?.try_get(0)?;
        if got == want {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(anyhow!("{sql} returned {got:?}, wanted {want:?} within {timeout:?}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A CBOR enqueue envelope `{queueName, message, deploymentId?}` around raw message bytes, as
/// the Platformatic client sends it (short text only: names under 24 bytes).
pub fn cbor_envelope(queue_name: &str, message: &[u8], deployment_id: Option<&str>) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, s: &str) {
        assert!(s.len() < 24, "short CBOR text only");
        out.push(0x60 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = vec![if deployment_id.is_some() { 0xa3 } else { 0xa2 }];
    text(&mut out, "queueName");
    text(&mut out, queue_name);
    text(&mut out, "message");
    out.extend_from_slice(message);
    if let Some(d) = deployment_id {
        text(&mut out, "deploymentId");
        text(&mut out, d);
    }
    out
}
