//! `./pgw bench`: event-append throughput of `workflow.event_create` beside a raw single-row
//! INSERT baseline on the same cluster in the same run, and append cost deep into one run's log.
//! Prints figures; asserts nothing (targets are reported next to the measurements).

use anyhow::{Context, Result};
use pgworld_it::connect;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, Statement};

/// A connection with both workloads' statements prepared once, as the façade and any pooled
/// client would do.
struct Conn {
    client: Client,
    event: Statement,
    raw: Statement,
    floor: Vec<Statement>,
}

/// The rows the 6-event lifecycle leaves, written by hand-made SQL (one statement per event,
/// plus the run's own insert): no state machine, no locking reads, no JSON handling, no
/// row-level security (the benchmark's superuser bypasses it). What the schema's writes cost
/// by themselves: a floor for `event_create`, not a workload.
const FLOOR: [&str; 7] = [
    "INSERT INTO workflow.runs (application_id, run_id, status, deployment_id, workflow_name, spec_version, event_count, input, \
     attributes, created_at, updated_at) VALUES ($1, $2, 'pending', 'v1', 'bench', 3, 1, '{\"$bytes\": \"ZGV2bAGSAQ==\"}', '{}', now(), now())",
    "INSERT INTO workflow.events (application_id, run_id, slot, event_type, event_data, spec_version, created_at) VALUES ($1, $2, 1, \
     'run_created', '{\"deploymentId\": \"v1\", \"workflowName\": \"bench\", \"input\": {\"$bytes\": \"ZGV2bAGSAQ==\"}}', 3, now())",
    "WITH u AS (UPDATE workflow.runs SET status = 'running', started_at = now(), updated_at = now(), event_count = event_count + 1 \
     WHERE application_id = $1 AND run_id = $2 RETURNING event_count) \
     INSERT INTO workflow.events (application_id, run_id, slot, event_type, spec_version, created_at) SELECT $1, $2, event_count, 'run_started', 3, now() FROM u",
    "WITH u AS (UPDATE workflow.runs SET event_count = event_count + 1 WHERE application_id = $1 AND run_id = $2 RETURNING event_count), \
     s AS (INSERT INTO workflow.steps (application_id, run_id, step_id, step_name, status, attempt, spec_version, input, created_slot, created_at, updated_at) \
           SELECT $1, $2, 'step_1', 'step//add', 'pending', 0, 3, '{\"$bytes\": \"ZGV2bAGSAQ==\"}', event_count, now(), now() FROM u) \
     INSERT INTO workflow.events (application_id, run_id, slot, event_type, correlation_id, event_data, spec_version, created_at) \
     SELECT $1, $2, event_count, 'step_created', 'step_1', '{\"stepName\": \"step//add\", \"input\": {\"$bytes\": \"ZGV2bAGSAQ==\"}}', 3, now() FROM u",
    "WITH u AS (UPDATE workflow.runs SET event_count = event_count + 1 WHERE application_id = $1 AND run_id = $2 RETURNING event_count), \
     s AS (UPDATE workflow.steps SET status = 'running', attempt = 1, started_at = now(), updated_at = now() \
           WHERE application_id = $1 AND run_id = $2 AND step_id = 'step_1') \
     INSERT INTO workflow.events (application_id, run_id, slot, event_type, correlation_id, event_data, spec_version, created_at) \
     SELECT $1, $2, event_count, 'step_started', 'step_1', '{\"attempt\": 1}', 3, now() FROM u",
    "WITH u AS (UPDATE workflow.runs SET event_count = event_count + 1 WHERE application_id = $1 AND run_id = $2 RETURNING event_count), \
     s AS (UPDATE workflow.steps SET status = 'completed', output = '\"ZGV2bAGSAg==\"', completed_at = now(), updated_at = now() \
           WHERE application_id = $1 AND run_id = $2 AND step_id = 'step_1') \
     INSERT INTO workflow.events (application_id, run_id, slot, event_type, correlation_id, event_data, spec_version, created_at) \
     SELECT $1, $2, event_count, 'step_completed', 'step_1', '{\"result\": \"ZGV2bAGSAg==\"}', 3, now() FROM u",
    "WITH u AS (UPDATE workflow.runs SET status = 'completed', output = '\"ZGV2bAGSAg==\"', completed_at = now(), updated_at = now(), \
     event_count = event_count + 1 WHERE application_id = $1 AND run_id = $2 RETURNING event_count) \
     INSERT INTO workflow.events (application_id, run_id, slot, event_type, event_data, spec_version, created_at) \
     SELECT $1, $2, event_count, 'run_completed', '{\"output\": \"ZGV2bAGSAg==\"}', 3, now() FROM u",
];

async fn open(url: &str) -> Result<Conn> {
    let client = connect(url).await?;
    let event = client.prepare("SELECT workflow.event_create($1, '{}', $2)").await?;
    let raw = client
        .prepare("INSERT INTO bench_raw (run_id, slot, event_type, event_data) VALUES ($1, $2, 'step_completed', $3)")
        .await?;
    let mut floor = Vec::with_capacity(FLOOR.len());
    for sql in FLOOR {
        floor.push(client.prepare_typed(sql, &[tokio_postgres::types::Type::INT4, tokio_postgres::types::Type::TEXT]).await?);
    }
    Ok(Conn { client, event, raw, floor })
}

/// Distinguishes this invocation's run ids from earlier ones in the same database.
static RUN_TAG: std::sync::LazyLock<u128> = std::sync::LazyLock::new(|| {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
});

const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Run ids are unique across workers and rounds.
static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

struct Args {
    url: String,
    clients: usize,
    seconds: u64,
    deep: i64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        url: std::env::var("PGWORLD_BENCH_URL").context("PGWORLD_BENCH_URL is not set")?,
        clients: 8,
        seconds: 10,
        deep: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => a.clients = value.parse()?,
            "--seconds" => a.seconds = value.parse()?,
            "--deep" => a.deep = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

/// Runs one task per client, each calling `op(state, worker, iteration)` on its own `state`
/// until time is up. Returns operations per second, where `op` reports how many it completed.
async fn timed<S, F, Fut>(states: Vec<S>, seconds: u64, op: F) -> Result<f64>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<u64>> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (w, state) in states.into_iter().enumerate() {
        let state = Arc::new(state);
        let (done, stop, op) = (done.clone(), stop.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                done.fetch_add(op(state.clone(), w, i).await?, Ordering::Relaxed);
                i += 1;
            }
            anyhow::Ok(())
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed)
}

/// `timed` over `clients` database connections with both workloads' statements prepared.
async fn drive<F, Fut>(url: &str, clients: usize, seconds: u64, op: F) -> Result<f64>
where
    F: Fn(Arc<Conn>, usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<u64>> + Send,
{
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(open(url).await?);
    }
    timed(conns, seconds, op).await
}

async fn event(c: &Conn, run: &str, body: serde_json::Value) -> Result<()> {
    c.client.query_one(&c.event, &[&run, &body]).await.with_context(|| format!("event_create {body}"))?;
    Ok(())
}

/// run_created, run_started, step_created, step_started, step_completed, run_completed.
async fn lifecycle(c: Arc<Conn>, _worker: usize, _iteration: u64) -> Result<u64> {
    let run = format!("wrun_b{}_{}", *RUN_TAG, NEXT_RUN.fetch_add(1, Ordering::Relaxed));
    let input = json!({"$bytes": "ZGV2bAGSAQ=="});
    event(
        &c,
        &run,
        json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "bench", "input": input}}),
    )
    .await?;
    event(&c, &run, json!({"eventType": "run_started"})).await?;
    event(
        &c,
        &run,
        json!({"eventType": "step_created", "correlationId": "step_1", "eventData": {"stepName": "step//add", "input": input}}),
    )
    .await?;
    event(&c, &run, json!({"eventType": "step_started", "correlationId": "step_1", "eventData": {"attempt": 1}})).await?;
    event(&c, &run, json!({"eventType": "step_completed", "correlationId": "step_1", "eventData": {"result": "ZGV2bAGSAg=="}}))
        .await?;
    event(&c, &run, json!({"eventType": "run_completed", "eventData": {"output": "ZGV2bAGSAg=="}})).await?;
    Ok(6)
}

/// The same lifecycle through the façade: one HTTP request per event, keep-alive connections.
async fn lifecycle_http(http: &reqwest::Client, base: &str) -> Result<u64> {
    let run = format!("wrun_h{}_{}", *RUN_TAG, NEXT_RUN.fetch_add(1, Ordering::Relaxed));
    let url = format!("{base}/api/v1/apps/default/runs/{run}/events");
    let input = json!({"$bytes": "ZGV2bAGSAQ=="});
    for body in [
        json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "bench", "input": input}}),
        json!({"eventType": "run_started"}),
        json!({"eventType": "step_created", "correlationId": "step_1", "eventData": {"stepName": "step//add", "input": input}}),
        json!({"eventType": "step_started", "correlationId": "step_1", "eventData": {"attempt": 1}}),
        json!({"eventType": "step_completed", "correlationId": "step_1", "eventData": {"result": "ZGV2bAGSAg=="}}),
        json!({"eventType": "run_completed", "eventData": {"output": "ZGV2bAGSAg=="}}),
    ] {
        let res = http.post(&url).json(&body).send().await?;
        anyhow::ensure!(res.status().is_success(), "façade answered {} for {body}", res.status());
        res.bytes().await?;
    }
    Ok(6)
}

/// `timed` over `clients` HTTP clients (each keeps its connections alive).
async fn drive_http(base: &str, clients: usize, seconds: u64) -> Result<f64> {
    let base = Arc::new(base.to_owned());
    let http: Vec<reqwest::Client> = (0..clients).map(|_| reqwest::Client::new()).collect();
    timed(http, seconds, move |http, _, _| {
        let base = Arc::clone(&base);
        async move { lifecycle_http(&http, &base).await }
    })
    .await
}

/// The lifecycle's rows by hand ([`FLOOR`]); counts its 6 events.
async fn floor_lifecycle(c: Arc<Conn>, app: i32) -> Result<u64> {
    let run = format!("wrun_f{}_{}", *RUN_TAG, NEXT_RUN.fetch_add(1, Ordering::Relaxed));
    for st in &c.floor {
        c.client.execute(st, &[&app, &run]).await?;
    }
    Ok(6)
}

async fn raw_insert(c: Arc<Conn>, worker: usize, i: u64) -> Result<u64> {
    let run = format!("raw_{worker}_{}", i / 6);
    let data = json!({"stepName": "step//add", "input": "ZGV2bAGSAQ=="});
    c.client.execute(&c.raw, &[&run, &((i % 6) as i64), &data]).await?;
    Ok(1)
}

/// Median latency of `n` single-event appends (each its own transaction) on one run. The
/// median, because a single commit's fsync can take many times the usual.
async fn append_latency(c: &Conn, run: &str, from: i64, n: i64) -> Result<f64> {
    let mut samples = Vec::new();
    for i in 0..n {
        let body = json!({"eventType": "wait_created", "correlationId": format!("lat_{from}_{i}"), "eventData": {"resumeAt": 0}});
        let start = Instant::now();
        event(c, run, body).await?;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(median(samples))
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let admin = connect(&a.url).await?;
    let version: String = admin.query_one("SHOW server_version", &[]).await?.get(0);
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS bench_raw;
             CREATE TABLE bench_raw (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id text NOT NULL, slot bigint NOT NULL,
                                     event_type text NOT NULL, event_data jsonb, created_at timestamptz NOT NULL DEFAULT now());
             SET workflow.app_id = 'default';
             INSERT INTO workflow.quotas (application_id, max_runs, max_events_per_run)
               SELECT application_id, 1000000, 1000000 FROM workflow.applications WHERE label = 'default'
               ON CONFLICT (application_id) DO UPDATE SET max_runs = 1000000, max_events_per_run = 1000000;",
        )
        .await?;
    let app_url = format!("{}{}options=-c%20workflow.app_id%3Ddefault", a.url, if a.url.contains('?') { "&" } else { "?" });

    println!(
        "pgworld bench: PostgreSQL {version}, {} clients, {} rounds of {} s per workload (alternating; medians)",
        a.clients, ROUNDS, a.seconds
    );
    // The façade, when the script hands over the dispatcher binary: single-tenant, API only.
    let facade = match std::env::var("PGWORLD_DISPATCHER_BIN") {
        Ok(bin) => {
            let p = pgworld_it::process::DispatcherProc::spawn(
                &bin,
                &a.url,
                "bench-facade",
                &[
                    ("PGWORLD_MODE", "single"),
                    ("PGWORLD_DISPATCH_ENABLED", "false"),
                    ("PGWORLD_METRICS_PORT", "0"),
                    ("RUST_LOG", "warn"),
                ],
            )?;
            let base = format!("http://127.0.0.1:{}", p.port);
            let probe = reqwest::Client::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while probe.get(format!("{base}/ready")).send().await.is_err() {
                anyhow::ensure!(Instant::now() < deadline, "the façade did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some((p, base))
        }
        Err(_) => None,
    };
    // Alternating rounds, so background work (autovacuum, checkpoints) on this small machine
    // does not land on one workload only.
    let app: i32 = admin.query_one("SELECT application_id FROM workflow.applications WHERE label = 'default'", &[]).await?.get(0);
    let (mut raws, mut events, mut https, mut floors) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        raws.push(drive(&a.url, a.clients, a.seconds, raw_insert).await?);
        events.push(drive(&app_url, a.clients, a.seconds, lifecycle).await?);
        floors.push(drive(&a.url, a.clients, a.seconds, move |c, _, _| floor_lifecycle(c, app)).await?);
        let mut line = format!(
            "  round {round}: raw {:.0} rows/s, event_create {:.0} events/s, hand-made SQL {:.0} events/s",
            raws[round - 1],
            events[round - 1],
            floors[round - 1]
        );
        if let Some((_, base)) = &facade {
            https.push(drive_http(base, a.clients, a.seconds).await?);
            line.push_str(&format!(", façade {:.0} events/s", https[round - 1]));
        }
        println!("{line}");
    }
    let (raw, events) = (median(raws), median(events));
    println!("{:<46} {:>10.0} rows/s", "raw single-row INSERT (autocommit)", raw);
    println!("{:<46} {:>10.0} events/s", "workflow.event_create (6-event run lifecycle)", events);
    println!("{:<46} {:>10.2}   (target >= 0.50)", "event_create / raw INSERT", events / raw);
    let floor = median(floors);
    println!("{:<46} {:>10.0} events/s", "hand-made SQL writing the same rows", floor);
    println!("{:<46} {:>10.2}   (the schema's floor for the ratio above)", "hand-made SQL / raw INSERT", floor / raw);
    println!("{:<46} {:>10.2}", "event_create / hand-made SQL", events / floor);
    if facade.is_some() {
        let http = median(https);
        println!("{:<46} {:>10.0} events/s", "façade POST …/events (same lifecycle)", http);
        println!("{:<46} {:>10.2}   (target >= 0.60)", "façade / direct SQL event_create", http / events);
    }

    let c = open(&app_url).await?;
    let deep_run = format!("wrun_deep_{}", *RUN_TAG);
    event(&c, &deep_run, json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "deep"}}))
        .await?;
    event(&c, &deep_run, json!({"eventType": "run_started"})).await?;
    let sample = 500;
    // Both depths are measured in the steady state autovacuum keeps: vacuumed and analyzed.
    let vacuum = "VACUUM ANALYZE workflow.runs, workflow.events, workflow.waits";
    admin.batch_execute(vacuum).await?;
    let shallow = append_latency(&c, &deep_run, 10, sample).await?;
    // The deep log is written in bulk, as the rows the API would have appended one by one: one
    // transaction updating the run row 100,000 times would leave a version chain no real
    // workload (one commit per event) produces.
    let fill_from = 2 + sample + 1;
    let fill_start = Instant::now();
    admin
        .execute(
            "WITH app AS (SELECT application_id FROM workflow.applications WHERE label = 'default'),
                  w AS (INSERT INTO workflow.waits (application_id, run_id, wait_id, status, resume_at, spec_version, created_at, updated_at)
                        SELECT app.application_id, $1, 'fill_' || g, 'waiting', 'epoch', 6, now(), now()
                        FROM app, generate_series($2::bigint, $3::bigint) g)
             INSERT INTO workflow.events (application_id, run_id, slot, event_type, correlation_id, event_data, spec_version, created_at)
             SELECT app.application_id, $1, g, 'wait_created', 'fill_' || g, '{\"resumeAt\": \"1970-01-01T00:00:00.000Z\"}', 6, now()
             FROM app, generate_series($2::bigint, $3::bigint) g",
            &[&deep_run, &fill_from, &(a.deep - 1)],
        )
        .await?;
    admin.execute("UPDATE workflow.runs SET event_count = $2 WHERE run_id = $1", &[&deep_run, &(a.deep - 1)]).await?;
    admin.batch_execute(vacuum).await?;
    let fill = fill_start.elapsed().as_secs_f64();
    let deep = append_latency(&c, &deep_run, a.deep, sample).await?;
    println!("{:<46} {:>10.0} us  (events 11..{})", "median append latency near event 10", shallow, 10 + sample);
    println!(
        "{:<46} {:>10.0} us  (events {}..{})",
        format!("median append latency near event {}", a.deep),
        deep,
        a.deep,
        a.deep + sample
    );
    println!("{:<46} {:>10.2}   (target <= 1.20)", "deep / shallow append cost", deep / shallow);
    println!("{:<46} {:>10.1} s (bulk INSERT of the log, then VACUUM ANALYZE)", "preparing the deep run", fill);
    Ok(())
}
