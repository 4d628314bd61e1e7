//! `./pgw bench queue`: the real dispatcher binary delivering to a local HTTP sink.
//! Figures: enqueue → receiver latency on an idle system (p50, p99), the sustained delivery rate
//! over a window with a deep backlog, the enqueue rate (one message per transaction), and the
//! dispatcher's resident memory idle, under load, and while 8 clients read a 100 MiB stream.
//! Prints figures; asserts nothing.

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use pgworld_it::connect;
use pgworld_it::process::DispatcherProc;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The sink registers with the most a pod may ask for, and for a backlog as several pods: it
/// stands in for a version's pods, so the figures are the dispatcher's (200 deliveries open, and
/// a pod's slot is free only once its outcome is recorded), not one pod's limit.
const SINK_CONCURRENCY: i32 = 256;
const SINK_PODS: usize = 4;

/// Registers the sink as the `SINK_PODS` pods `sink-{version}-{k}` of `version`.
async fn register_sink(c: &tokio_postgres::Client, version: &str, endpoints: &Value) -> Result<()> {
    for k in 0..SINK_PODS {
        c.query_one(
            "SELECT workflow.handler_register($1)",
            &[&json!({"podId": format!("sink-{version}-{k}"), "deploymentVersion": version, "endpoints": endpoints,
                      "maxConcurrency": SINK_CONCURRENCY})],
        )
        .await?;
    }
    Ok(())
}

/// Deregisters the pods of `register_sink` and, once the dispatcher has recorded the deliveries
/// it had open (deleting rows it is about to update would deadlock with it), drops what is left
/// of `version`'s queue.
async fn retire_sink(c: &tokio_postgres::Client, version: &str) -> Result<()> {
    c.execute("SELECT workflow.handler_deregister(pod_id) FROM workflow.handlers WHERE deployment_version = $1", &[&version])
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 = c
            .query_one("SELECT count(*) FROM workflow.messages WHERE deployment_version = $1 AND state = 'leased'", &[&version])
            .await?
            .get(0);
        if open == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.batch_execute(&format!(
        "DELETE FROM workflow.message_bodies WHERE id IN (SELECT id FROM workflow.messages WHERE deployment_version = '{version}'); \
         DELETE FROM workflow.messages WHERE deployment_version = '{version}'"
    ))
    .await?;
    Ok(())
}

struct Sink {
    count: AtomicU64,
    /// Arrival time per message id, only while latency is being measured.
    arrivals: Mutex<HashMap<String, Instant>>,
    track: AtomicBool,
    arrived: Notify,
}

async fn start_sink() -> Result<(String, Arc<Sink>)> {
    start_sink_on(tokio::net::TcpListener::bind("127.0.0.1:0").await?).await
}

/// The sink on `listener`. A delivery names its message in the JSON body (pgworld) or in the
/// `x-vqs-message-id` header (@workflow/world-postgres).
async fn start_sink_on(listener: tokio::net::TcpListener) -> Result<(String, Arc<Sink>)> {
    let sink = Arc::new(Sink {
        count: AtomicU64::new(0),
        arrivals: Mutex::new(HashMap::new()),
        track: AtomicBool::new(false),
        arrived: Notify::new(),
    });
    let s = Arc::clone(&sink);
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: Bytes| {
        let s = Arc::clone(&s);
        async move {
            let now = Instant::now();
            s.count.fetch_add(1, Ordering::Relaxed);
            if s.track.load(Ordering::Relaxed) {
                let from_header = headers.get("x-vqs-message-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                if let Some(id) = from_header.or_else(|| {
                    serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v.pointer("/meta/messageId").and_then(Value::as_str).map(str::to_owned))
                }) {
                    s.arrivals.lock().unwrap_or_else(PoisonError::into_inner).insert(id, now);
                    s.arrived.notify_waiters();
                }
            }
            ""
        }
    });
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((base, sink))
}

/// VmRSS and VmHWM of a process, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Args {
    url: String,
    dispatcher: String,
    seconds: u64,
    backlog: i64,
    samples: usize,
    clients: usize,
    reader_seconds: u64,
    /// `--only delivery`: the two delivery-rate figures alone.
    delivery_only: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        url: std::env::var("PGWORLD_BENCH_URL").context("PGWORLD_BENCH_URL is not set")?,
        dispatcher: std::env::var("PGWORLD_DISPATCHER_BIN").context("PGWORLD_DISPATCHER_BIN is not set")?,
        seconds: 20,
        backlog: 300_000,
        samples: 500,
        clients: 8,
        reader_seconds: 120,
        delivery_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse()?,
            "--backlog" => a.backlog = value.parse()?,
            "--samples" => a.samples = value.parse()?,
            "--clients" => a.clients = value.parse()?,
            "--reader-seconds" => a.reader_seconds = value.parse()?,
            "--only" if value == "delivery" => a.delivery_only = true,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let admin = connect(&a.url).await?;
    admin
        .batch_execute(
            "SET workflow.app_id = 'default'; SET workflow.admin = on;
             SELECT workflow.quotas_put('{\"maxQueuePerMinute\": 2147483647}');
             DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgworld_bench_dispatcher') THEN
               CREATE ROLE pgworld_bench_dispatcher LOGIN IN ROLE pgworld_service; END IF; END $$;",
        )
        .await?;
    let (base, sink) = start_sink().await?;
    let endpoints = json!({"workflow": format!("{base}/w"), "step": format!("{base}/s"), "webhook": format!("{base}/h")});
    let dispatcher_url = a.url.replacen("postgres@", "pgworld_bench_dispatcher@", 1);
    let d = DispatcherProc::spawn(
        &a.dispatcher,
        &dispatcher_url,
        "bench",
        &[("RUST_LOG", "warn"), ("PGWORLD_POLL_INTERVAL_MS", "1000")],
    )?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle_rss, _) = rss_mib(d.pid());
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    println!("pgworld queue bench: {cpus} CPUs, dispatcher pid {} (default settings: concurrency 200, lease 60 s)", d.pid());

    let idle = if a.delivery_only { None } else { Some(latency_and_enqueue_rate(&a, &admin, &sink, &endpoints).await?) };

    // 3. Sustained delivery: a backlog no handler serves yet, then a handler registers and the
    //    dispatcher drains it; the rate is counted at the sink over the window after a warm-up.
    write_backlog(&admin, "load", a.backlog).await?;
    let sustained = drain(&admin, &sink, &endpoints, d.pid(), "load", a.backlog, Duration::from_secs(a.seconds)).await?;
    if sustained.exhausted {
        println!("  (the backlog ran out before the window ended: raise --backlog)");
    }
    let rate = sustained.rate();
    println!(
        "{:<52} {:>8.0} msg/s  (target >= 5000; {} in {:.1} s)",
        "sustained delivery rate to a local sink", rate, sustained.delivered, sustained.secs
    );
    let peak_rss = sustained.peak_rss;
    let (_, hwm) = rss_mib(d.pid());
    println!("{:<52} {:>8.1} MiB  (target <= 20)", "dispatcher RSS, idle", idle_rss);
    println!("{:<52} {:>8.1} MiB  (target <= 60; peak VmHWM {hwm:.1})", "dispatcher RSS under load (max sampled)", peak_rss);
    if !a.delivery_only {
        stream_reads(&admin, &d).await?;
        ready_under_slowloris(&d).await?;
    }
    with_long_reader(&a, &admin, &sink, &endpoints, d.pid(), rate).await?;
    // After the reader: the backlogs these write and delete would otherwise be in the table the
    // reader phase drains, and its figure would not compare with earlier runs.
    if !a.delivery_only {
        fairness(&a, &admin, &sink, &endpoints).await?;
        if let Some((p50, p99)) = idle {
            world_postgres(&a, &admin, rate, p50, p99).await?;
        }
    }
    Ok(())
}

/// `n` messages due now for `version`, written straight into the queue's tables as the enqueue
/// function writes them (its own rate is figure 2; a backlog of millions would take minutes),
/// then vacuumed so the drain starts from a clean table.
async fn write_backlog(admin: &tokio_postgres::Client, version: &str, n: i64) -> Result<()> {
    for chunk in (0..n).step_by(50_000) {
        admin
            .execute(
                "WITH m AS (INSERT INTO workflow.messages (application_id, state, kind, queue_name, run_id, deployment_version, \
                                                          available_at, created_at, updated_at) \
                            SELECT a.application_id, 'pending', 'workflow', '__wkf_workflow_bench', 'wrun_' || g, $2, now(), now(), now() \
                            FROM workflow.applications a, generate_series(1, $1::bigint) g WHERE a.label = 'default' \
                            RETURNING id, application_id, run_id) \
                 INSERT INTO workflow.message_bodies (id, application_id, encoding, body_json) \
                 SELECT id, application_id, 'json', jsonb_build_object('runId', run_id) FROM m",
                &[&(n - chunk).min(50_000), &version],
            )
            .await?;
    }
    admin.batch_execute("VACUUM ANALYZE workflow.messages, workflow.message_bodies").await?;
    Ok(())
}

/// What a drain delivered: arrivals over the window, and the dispatcher's largest RSS sample.
struct Drained {
    delivered: u64,
    secs: f64,
    /// The backlog ran out before the window ended.
    exhausted: bool,
    peak_rss: f64,
}

impl Drained {
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
}

/// Registers a handler for `version`'s backlog of `backlog` messages and counts arrivals at the
/// sink over `window` after a 2 s warm-up, or until the backlog runs out.
async fn drain(
    admin: &tokio_postgres::Client,
    sink: &Sink,
    endpoints: &Value,
    pid: u32,
    version: &str,
    backlog: i64,
    window: Duration,
) -> Result<Drained> {
    let before = sink.count.load(Ordering::Relaxed);
    register_sink(admin, version, endpoints).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (window_start, start_count) = (Instant::now(), sink.count.load(Ordering::Relaxed));
    let (mut peak_rss, mut exhausted) = (0f64, false);
    while window_start.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(rss_mib(pid).0);
        if sink.count.load(Ordering::Relaxed) - before >= backlog as u64 {
            exhausted = true;
            break;
        }
    }
    let delivered = sink.count.load(Ordering::Relaxed) - start_count;
    Ok(Drained { delivered, secs: window_start.elapsed().as_secs_f64(), exhausted, peak_rss })
}

/// 6. Sustained delivery while one REPEATABLE READ transaction that has read the queue stays
///    open for `--reader-seconds` (an operator's psql session, a report): no row version the
///    queue leaves behind meanwhile can be removed, so the claim path must not walk them.
async fn with_long_reader(
    a: &Args,
    admin: &tokio_postgres::Client,
    sink: &Sink,
    endpoints: &Value,
    pid: u32,
    rate: f64,
) -> Result<()> {
    let backlog = (rate * (a.reader_seconds + 5) as f64 * 1.2) as i64;
    retire_sink(admin, "load").await?;
    write_backlog(admin, "reader", backlog).await?;
    let reader = connect(&a.url).await?;
    reader.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM workflow.messages").await?;
    // The reader stays open for the warm-up and the window.
    let window = Duration::from_secs(a.reader_seconds.saturating_sub(2));
    let drained = drain(admin, sink, endpoints, pid, "reader", backlog, window).await?;
    let dead: i64 = admin
        .query_one("SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = 'workflow' AND relname = 'messages'", &[])
        .await?
        .get(0);
    reader.batch_execute("COMMIT").await?;
    if drained.exhausted {
        println!("  (the backlog ran out before the reader closed)");
    }
    let with_reader = drained.rate();
    println!(
        "{:<52} {:>8.0} msg/s  ({:.0}% of the rate without it, target >= 80%; {} in {:.1} s, {dead} dead row versions)",
        format!("delivery rate, {} s REPEATABLE READ reader open", a.reader_seconds),
        with_reader,
        100.0 * with_reader / rate,
        drained.delivered,
        drained.secs
    );
    retire_sink(admin, "reader").await?;
    Ok(())
}

/// Milliseconds from `start` until message `id` reached the sink (tracking on), within `limit`.
async fn arrival_ms(sink: &Sink, id: &str, start: Instant, limit: Duration) -> Result<f64> {
    let deadline = start + limit;
    loop {
        let arrived = sink.arrived.notified();
        if let Some(at) = sink.arrivals.lock().unwrap_or_else(PoisonError::into_inner).remove(id) {
            return Ok(at.duration_since(start).as_secs_f64() * 1000.0);
        }
        if Instant::now() > deadline {
            bail!("message {id} not delivered within {limit:?}");
        }
        // Woken by the next arrival, or a bounded wait: an arrival may land between the check
        // above and this wait.
        let _woken_or_timed_out = tokio::time::timeout(Duration::from_millis(100), arrived).await;
    }
}

/// Enqueues single messages one after another (`gap` apart) through `c` and returns each one's
/// enqueue → sink arrival time in ms, sorted.
async fn single_latencies(c: &tokio_postgres::Client, sink: &Sink, version: &str, n: usize, gap: Duration) -> Result<Vec<f64>> {
    let enqueue = c.prepare("SELECT workflow.queue_enqueue('{}', $1)->>'messageId'").await?;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let env = json!({"queueName": "__wkf_workflow_bench", "message": {"i": i}, "deploymentId": version});
        let start = Instant::now();
        let id: String = c.query_one(&enqueue, &[&env]).await?.get(0);
        latencies.push(arrival_ms(sink, &id, start, Duration::from_secs(30)).await?);
        tokio::time::sleep(gap).await;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// 7. Fairness: while one route drains a 100,000-message backlog, single messages of another
///    app, then of another version of the same app, are delivered promptly.
async fn fairness(a: &Args, admin: &tokio_postgres::Client, sink: &Sink, endpoints: &Value) -> Result<()> {
    const BACKLOG: i64 = 100_000;
    admin.batch_execute("SELECT workflow.app_provision('{\"appId\": \"bench_b\"}')").await?;
    let app_b = connect(&a.url).await?;
    app_b.batch_execute("SET workflow.app_id = 'bench_b'; SET workflow.admin = on;").await?;
    app_b.query_one("SELECT workflow.quotas_put('{\"maxQueuePerMinute\": 2147483647}')", &[]).await?;
    let register = |version: &str| {
        json!({"podId": format!("sink-{version}"), "deploymentVersion": version, "endpoints": endpoints,
                               "maxConcurrency": SINK_CONCURRENCY})
    };
    app_b.query_one("SELECT workflow.handler_register($1)", &[&register("b1")]).await?;
    admin.query_one("SELECT workflow.handler_register($1)", &[&register("a2")]).await?;
    for (label, single, version, backlog_version) in
        [("another app", &app_b, "b1", "fair_app"), ("another version of the app", admin, "a2", "fair_version")]
    {
        write_backlog(admin, backlog_version, BACKLOG).await?;
        let before = sink.count.load(Ordering::Relaxed);
        register_sink(admin, backlog_version, endpoints).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        sink.track.store(true, Ordering::Relaxed);
        let latencies = single_latencies(single, sink, version, 200, Duration::from_millis(10)).await?;
        sink.track.store(false, Ordering::Relaxed);
        sink.arrivals.lock().unwrap_or_else(PoisonError::into_inner).clear();
        let drained = sink.count.load(Ordering::Relaxed) - before;
        let still_draining = drained < BACKLOG as u64;
        println!(
            "{:<52} {:>8.2} ms   (target <= 50; p50 {:.2} ms; {drained} of the backlog delivered meanwhile{})",
            format!("{label}: single message p99, backlog draining"),
            percentile(&latencies, 0.99),
            percentile(&latencies, 0.5),
            if still_draining { "" } else { ", the backlog ran out" },
        );
        retire_sink(admin, backlog_version).await?;
    }
    Ok(())
}

/// 8. The same sink driven by @workflow/world-postgres's queue (graphile-worker) on the same
///    PostgreSQL (concurrency and pool 50, the most this cluster's 100 connections allow beside
///    the rest): its sustained delivery rate and idle
///    latency, and pgworld's figures over them.
async fn world_postgres(a: &Args, admin: &tokio_postgres::Client, rate: f64, p50: f64, p99: f64) -> Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let Ok(driver) = std::env::var("PGWORLD_WP_DRIVER") else {
        println!("  (world-postgres comparison skipped: PGWORLD_WP_DRIVER is not set; ./pgw bench queue sets it)");
        return Ok(());
    };
    const BACKLOG: usize = 30_000;
    admin.batch_execute("DROP DATABASE IF EXISTS bench_wp WITH (FORCE)").await?;
    admin.batch_execute("CREATE DATABASE bench_wp").await?;
    let wp_url = match a.url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/bench_wp"),
        None => bail!("PGWORLD_BENCH_URL has no database"),
    };
    // A free port the sink takes only once the backlog is written: the worker waits for it.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let mut child = tokio::process::Command::new("node")
        .arg(&driver)
        .env("WORKFLOW_POSTGRES_URL", &wp_url)
        .env("WORKFLOW_LOCAL_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("WORKFLOW_POSTGRES_WORKER_CONCURRENCY", "50")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting node for the world-postgres driver")?;
    let mut stdin = child.stdin.take().context("driver stdin")?;
    let mut stdout = BufReader::new(child.stdout.take().context("driver stdout")?).lines();
    let mut ask = async |line: &str| -> Result<String> {
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        loop {
            let line = stdout.next_line().await?.context("the world-postgres driver exited")?;
            let Some(answer) = line.strip_prefix("=> ") else { continue };
            if answer.starts_with("error") {
                bail!("world-postgres driver: {answer}");
            }
            return Ok(answer.to_owned());
        }
    };
    let written = Instant::now();
    ask(&format!("backlog {BACKLOG}")).await?;
    let enqueue_secs = written.elapsed().as_secs_f64();
    let (_, sink) = start_sink_on(tokio::net::TcpListener::bind(("127.0.0.1", port)).await?).await?;
    // The same window as pgworld's: after a warm-up, until it ends or the backlog runs out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (start, start_count) = (Instant::now(), sink.count.load(Ordering::Relaxed));
    while start.elapsed() < Duration::from_secs(a.seconds) && sink.count.load(Ordering::Relaxed) < BACKLOG as u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wp_rate = (sink.count.load(Ordering::Relaxed) - start_count) as f64 / start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    while sink.count.load(Ordering::Relaxed) < BACKLOG as u64 {
        if Instant::now() > deadline {
            bail!("world-postgres delivered {} of {BACKLOG} within 5 minutes", sink.count.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sink.track.store(true, Ordering::Relaxed);
    let mut latencies = Vec::with_capacity(a.samples.min(200));
    for _ in 0..a.samples.min(200) {
        let started = Instant::now();
        let id = ask("single").await?;
        latencies.push(arrival_ms(&sink, &id, started, Duration::from_secs(10)).await?);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = ask("quit").await;
    let _ = child.wait().await;
    latencies.sort_by(f64::total_cmp);
    let (wp_p50, wp_p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "{:<52} {:>8.0} msg/s  (graphile-worker, concurrency 50, pool 50; its enqueue {:.0} msg/s)",
        "world-postgres: sustained delivery rate",
        wp_rate,
        BACKLOG as f64 / enqueue_secs
    );
    println!("{:<52} {:>8.2} ms   (p99 {wp_p99:.2} ms)", "world-postgres: enqueue -> receiver latency, idle, p50", wp_p50);
    println!("{:<52} {:>8.1} x    (target >= 3)", "pgworld / world-postgres, sustained delivery rate", rate / wp_rate);
    println!(
        "{:<52} {:>8.2}      (target <= 0.5; p50 {:.2})",
        "pgworld / world-postgres, idle p99 latency",
        p99 / wp_p99,
        p50 / wp_p50
    );
    admin.batch_execute("DROP DATABASE IF EXISTS bench_wp WITH (FORCE)").await?;
    Ok(())
}

/// 1 and 2: latency on an idle system and the enqueue rate.
async fn latency_and_enqueue_rate(
    a: &Args,
    admin: &tokio_postgres::Client,
    sink: &Sink,
    endpoints: &Value,
) -> Result<(f64, f64)> {
    // 1. Latency on an idle system: one message at a time, enqueue call → arrival at the sink.
    admin
        .query_one(
            "SELECT workflow.handler_register($1)",
            &[&json!({"podId": "sink", "deploymentVersion": "lat", "endpoints": endpoints, "maxConcurrency": SINK_CONCURRENCY})],
        )
        .await?;
    let enqueue = admin.prepare("SELECT workflow.queue_enqueue('{}', $1)->>'messageId'").await?;
    sink.track.store(true, Ordering::Relaxed);
    let mut latencies = Vec::with_capacity(a.samples);
    for i in 0..a.samples {
        let env = json!({"queueName": "__wkf_workflow_bench", "message": {"i": i}, "deploymentId": "lat"});
        let start = Instant::now();
        let id: String = admin.query_one(&enqueue, &[&env]).await?.get(0);
        latencies.push(arrival_ms(sink, &id, start, Duration::from_secs(10)).await?);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sink.track.store(false, Ordering::Relaxed);
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!("{:<52} {:>8.2} ms   (target <= 2)", "enqueue -> receiver latency, idle, p50", p50);
    println!("{:<52} {:>8.2} ms   (target <= 10)", "enqueue -> receiver latency, idle, p99", p99);

    // 2. Enqueue rate: one message per transaction from several clients, to a version without
    //    handlers so nothing is delivered meanwhile; those messages are removed afterwards.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut producers = Vec::new();
    for _ in 0..a.clients {
        let c = connect(&a.url).await?;
        c.batch_execute("SET workflow.app_id = 'default'").await?;
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        producers.push(tokio::spawn(async move {
            let stmt = c.prepare("SELECT workflow.queue_enqueue('{}', $1)").await?;
            let env = json!({"queueName": "__wkf_workflow_bench", "message": {"runId": "wrun_x"}, "deploymentId": "nobody"});
            while !stop.load(Ordering::Relaxed) {
                c.query_one(&stmt, &[&env]).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.await??;
    }
    let enqueue_rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("{:<52} {:>8.0} msg/s ({} clients, one message per transaction)", "enqueue rate", enqueue_rate, a.clients);
    // A bulk insert whose trigger enqueues per row: many enqueues in one transaction.
    let started = Instant::now();
    admin
        .execute(
            "SELECT count(workflow.queue_enqueue('{}', jsonb_build_object('queueName', '__wkf_workflow_bench', \
               'message', jsonb_build_object('runId', 'wrun_' || g), 'deploymentId', 'nobody'))) FROM generate_series(1, 10000) g",
            &[],
        )
        .await?;
    println!("{:<52} {:>8.0} msg/s", "enqueue rate, 10,000 in one transaction", 10_000.0 / started.elapsed().as_secs_f64());
    admin.batch_execute("DELETE FROM workflow.message_bodies WHERE id IN (SELECT id FROM workflow.messages WHERE deployment_version = 'nobody'); DELETE FROM workflow.messages WHERE deployment_version = 'nobody'").await?;
    Ok((p50, p99))
}

/// 5. `/ready` latency while 1,000 connections hold half a request head each (below the
///    connection cap, within the header timeout).
async fn ready_under_slowloris(d: &DispatcherProc) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let addr = format!("127.0.0.1:{}", d.port);
    let mut stalled = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut s = tokio::net::TcpStream::connect(&addr).await?;
        s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nX-a: ").await?;
        stalled.push(s);
    }
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/ready");
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let start = Instant::now();
        let status = http.get(&url).send().await?.status();
        if !status.is_success() {
            bail!("/ready answered {status} with 1,000 stalled connections open");
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    drop(stalled);
    times.sort_by(f64::total_cmp);
    println!(
        "{:<52} {:>8.2} ms   (target p99 < 100; p50 {:.2} ms)",
        "/ready p99 with 1,000 stalled connections open",
        percentile(&times, 0.99),
        percentile(&times, 0.5)
    );
    Ok(())
}

/// 4. Memory while 8 clients read one 100 MiB stream through the façade at once (snapshot
///    reads, 64 KiB chunks).
async fn stream_reads(admin: &tokio_postgres::Client, d: &DispatcherProc) -> Result<()> {
    const CHUNKS: i64 = 1600;
    admin
        .execute(
            "SELECT count(workflow.stream_put_bytes('wrun_big', 'big', '{}', pg_catalog.decode(repeat('78', 65536), 'hex'))) \
               FROM generate_series(1, $1::bigint)",
            &[&CHUNKS],
        )
        .await?;
    let url = format!("http://127.0.0.1:{}/api/v1/apps/default/streams/big", d.port);
    let (rss_before, _) = rss_mib(d.pid());
    let started = Instant::now();
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut res = reqwest::get(&url).await?;
                let mut total = 0usize;
                while let Some(chunk) = res.chunk().await? {
                    total += chunk.len();
                }
                anyhow::Ok(total)
            })
        })
        .collect();
    let mut peak = rss_before;
    while readers.iter().any(|r| !r.is_finished()) {
        peak = peak.max(rss_mib(d.pid()).0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut read = 0usize;
    for r in readers {
        read += r.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let want = 8 * CHUNKS as usize * 65536;
    if read != want {
        bail!("the stream readers got {read} bytes, not {want}");
    }
    println!(
        "{:<52} {:>8.1} MiB  (target <= 60; {:.0} MiB/s read in all)",
        "dispatcher RSS, 8 clients reading a 100 MiB stream",
        peak,
        read as f64 / 1048576.0 / secs
    );
    Ok(())
}
