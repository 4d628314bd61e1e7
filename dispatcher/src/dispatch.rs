//! The delivery loop (spec/queue.md §5, §11): claim due messages under leases, deliver them with
//! bounded concurrency, renew the leases of open requests, record outcomes, and run maintenance.
//! Every state change is a `workflow.*` call; this process holds no state a crash could lose.

use crate::backoff::Backoff;
use crate::config::DispatchConfig;
use crate::delivery::{Claimed, Deliverer};
use crate::metrics::{DispatchOutcome, Metrics};
use deadpool_postgres::Pool;
use pgworld_core::queue::Outcome;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use uuid::Uuid;

/// Largest claim per call (queue.md §5.4).
const CLAIM_BATCH: usize = 100;
/// Largest batch of plain successes recorded in one call.
const DELIVERED_BATCH: usize = 1000;
/// What `next_due_wait` adds to the time until the next message is due: so the next claim comes
/// just after it. A wait of exactly this means messages were due when the claim came back short.
const DUE_MARGIN: Duration = Duration::from_millis(5);
/// How long a claim loop whose due messages had no room waits when no outcome wakes it first
/// (another replica's outcomes free slots too, and they do not wake this one).
const ROOM_RETRY: Duration = Duration::from_millis(25);

pub struct Dispatcher {
    cfg: DispatchConfig,
    pool: Pool,
    deliverer: Deliverer,
    /// Pings, finished deliveries and reconnects wake the claim loop through this.
    wake: Arc<Notify>,
    /// HTTP requests in progress (the concurrency bound).
    in_flight: AtomicUsize,
    /// Leases to keep renewing: from claim until the outcome is recorded.
    held: Mutex<HashSet<Uuid>>,
    /// The last claim was full, so a freed slot should trigger another pass.
    more_waiting: AtomicBool,
    /// The last claim came back short while messages were due: their pods were full (or another
    /// replica had them locked). A recorded outcome frees a pod's slot, so it triggers a pass.
    waiting_for_room: AtomicBool,
    delivered_tx: mpsc::UnboundedSender<Uuid>,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// Starts the claim loop, lease renewal, outcome recording and maintenance; `wake` is pinged
    /// by the LISTEN connection. Returns when `stop` fires and in-flight deliveries are drained
    /// (bounded).
    pub async fn run(
        cfg: DispatchConfig,
        pool: Pool,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let (delivered_tx, delivered_rx) = mpsc::unbounded_channel();
        let me = Arc::new(Dispatcher {
            metrics,
            deliverer: Deliverer::new(&cfg)?,
            cfg,
            pool,
            wake: Arc::clone(&wake),
            in_flight: AtomicUsize::new(0),
            held: Mutex::new(HashSet::new()),
            more_waiting: AtomicBool::new(false),
            waiting_for_room: AtomicBool::new(false),
            delivered_tx,
        });
        let renewer = tokio::spawn(Arc::clone(&me).renew_loop(stop.clone()));
        let maintenance = tokio::spawn(Arc::clone(&me).maintenance_loop(stop.clone()));
        let recorder = tokio::spawn(Arc::clone(&me).record_delivered(delivered_rx));
        tracing::info!(owner = %me.cfg.owner, concurrency = me.cfg.concurrency, lease = ?me.cfg.lease, "dispatcher started");
        Arc::clone(&me).claim_loop(stop.clone()).await;

        // Shutdown: no new claims; let open deliveries finish for a bounded time. Whatever is
        // still open keeps its lease and is delivered again after it expires.
        let deadline = tokio::time::Instant::now() + me.cfg.shutdown_drain;
        while me.in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = me.in_flight.load(Ordering::Acquire);
        if left > 0 {
            tracing::warn!(left, "shutdown drain timed out; those messages are redelivered after their leases expire");
        }
        // Give the recorders a moment to write the outcomes of finished deliveries.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while left == 0 && !me.lock_held().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for task in [renewer, maintenance, recorder] {
            task.abort();
        }
        tracing::info!("dispatcher stopped");
        Ok(())
    }

    async fn claim_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut failures = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
        // Claims keep one backend: the extension's scan floors live in the backend that claimed,
        // and a claim on a backend whose floors are seconds old walks every row version the
        // queue left behind since. Given back to the pool only when a claim fails.
        let mut conn: Option<deadpool_postgres::Object> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let free = self.cfg.concurrency.saturating_sub(self.in_flight.load(Ordering::Acquire));
            let mut wait = self.cfg.poll_interval;
            if free > 0 {
                let batch = free.min(CLAIM_BATCH);
                let claimed = self.claim(&mut conn, batch).await;
                if claimed.is_err() {
                    conn = None;
                }
                match claimed {
                    Ok((claimed, next_due)) => {
                        failures.reset();
                        for m in claimed {
                            self.start_delivery(m);
                        }
                        let Some(next_due) = next_due else {
                            // A full batch: more may be due right now.
                            self.more_waiting.store(true, Ordering::Release);
                            self.waiting_for_room.store(false, Ordering::Release);
                            continue;
                        };
                        self.more_waiting.store(false, Ordering::Release);
                        // Due now, yet not claimed: wait for an outcome (or a while), not spin.
                        let no_room = next_due <= DUE_MARGIN;
                        self.waiting_for_room.store(no_room, Ordering::Release);
                        wait = if no_room { ROOM_RETRY.min(self.cfg.poll_interval) } else { next_due };
                    }
                    Err(e) => {
                        wait = failures.next_pause();
                        tracing::warn!(error = %format!("{e:#}"), retry_in = ?wait, "claim failed");
                    }
                }
            } else {
                self.more_waiting.store(true, Ordering::Release);
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Claims up to `max` messages on the claim loop's own connection; after a short batch, also
    /// how long until more may be due, asked on the same connection.
    async fn claim(
        &self,
        conn: &mut Option<deadpool_postgres::Object>,
        max: usize,
    ) -> anyhow::Result<(Vec<Claimed>, Option<Duration>)> {
        let client = match conn {
            Some(c) => c,
            None => conn.insert(self.pool.get().await?),
        };
        let stmt = client
            .prepare_cached(
                "SELECT lease_id, id, queue_name, url, encoding, body_json, body_cbor, headers, attempts, deployment_version \
                 FROM workflow.dispatch_claim($1, $2, $3)",
            )
            .await?;
        // The claim commits without waiting for its WAL flush: a lease lost in a crash just leaves
        // the message due again, so at-least-once delivery holds and the flush stays off the
        // enqueue → delivery path. The three statements go out pipelined, one round trip.
        let max_arg = i32::try_from(max)?;
        let lease_arg = self.cfg.lease.as_secs_f64();
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&self.cfg.owner, &max_arg, &lease_arg];
        let (begun, rows, committed) = tokio::join!(
            client.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
            client.query(&stmt, &args),
            client.batch_execute("COMMIT"),
        );
        begun?;
        let rows = rows?;
        committed?;
        let claimed: Vec<Claimed> = rows.iter().map(Claimed::from_row).collect::<anyhow::Result<_>>()?;
        self.lock_held().extend(claimed.iter().map(|m| m.lease_id));
        let next_due = if claimed.len() < max { Some(self.next_due_wait(client).await) } else { None };
        Ok((claimed, next_due))
    }

    /// Until the next message becomes due or lease expires, within the polling interval.
    async fn next_due_wait(&self, client: &deadpool_postgres::Client) -> Duration {
        let poll = self.cfg.poll_interval;
        let Ok(stmt) =
            client.prepare_cached("SELECT extract(epoch FROM workflow.dispatch_next_due() - clock_timestamp())::float8").await
        else {
            return poll;
        };
        match client.query_one(&stmt, &[]).await.and_then(|r| r.try_get::<_, Option<f64>>(0)) {
            Ok(Some(secs)) if secs.is_finite() => (Duration::from_secs_f64(secs.max(0.0)) + DUE_MARGIN).min(poll),
            _ => poll,
        }
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start_delivery(self: &Arc<Self>, m: Claimed) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            me.metrics.delivery_started();
            let outcome = me.deliverer.deliver(&m).await;
            let kind = match &outcome {
                Outcome::Delivered => DispatchOutcome::Success,
                Outcome::RescheduleAfter(_) | Outcome::TooEarly(_) => DispatchOutcome::Rescheduled,
                Outcome::Failed(_) if m.attempts + 1 >= pgworld_core::queue::MAX_ATTEMPTS => DispatchOutcome::Dead,
                Outcome::Failed(_) => DispatchOutcome::Failed,
            };
            me.metrics.delivery_finished(kind, started.elapsed());
            tracing::debug!(message = m.id, attempt = m.attempts, version = %m.deployment_version, ?outcome,
                            elapsed = ?started.elapsed(), "delivery finished");
            me.in_flight.fetch_sub(1, Ordering::AcqRel);
            if me.more_waiting.load(Ordering::Acquire) {
                me.wake.notify_one();
            }
            if outcome == Outcome::Delivered {
                // Recorded in batches by the recorder; the lease stays renewed until then.
                if me.delivered_tx.send(m.lease_id).is_err() {
                    me.lock_held().remove(&m.lease_id);
                }
            } else {
                me.record(m.lease_id, &outcome).await;
            }
        });
    }

    /// Records a non-trivial outcome, retrying while the database is unreachable for as long as
    /// the lease could still be ours; after that the lease expiry takes over.
    async fn record(&self, lease_id: Uuid, outcome: &Outcome) {
        let body = outcome.to_json();
        let give_up = tokio::time::Instant::now() + self.cfg.lease;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            let result = async {
                let client = self.pool.get().await?;
                let stmt = client.prepare_cached("SELECT workflow.dispatch_complete($1, $2)").await?;
                client.query_one(&stmt, &[&lease_id, &body]).await?;
                Ok::<(), anyhow::Error>(())
            }
            .await;
            match result {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() + backoff.step() < give_up => {
                    tracing::warn!(error = %format!("{e:#}"), "recording a delivery outcome failed; retrying");
                    tokio::time::sleep(backoff.next_pause()).await;
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "giving up recording an outcome; the lease expiry will redeliver");
                    break;
                }
            }
        }
        self.lock_held().remove(&lease_id);
        self.outcome_recorded();
    }

    /// A recorded outcome ends a lease, and so frees a slot of its pod.
    fn outcome_recorded(&self) {
        if self.waiting_for_room.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }

    /// Records plain successes in batches: one statement for everything that finished meanwhile.
    async fn record_delivered(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Uuid>) {
        let mut batch = Vec::with_capacity(DELIVERED_BATCH);
        while rx.recv_many(&mut batch, DELIVERED_BATCH).await > 0 {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            loop {
                let result = async {
                    let client = self.pool.get().await?;
                    let stmt = client.prepare_cached("SELECT workflow.dispatch_delivered($1)").await?;
                    client.query_one(&stmt, &[&batch]).await?;
                    Ok::<(), anyhow::Error>(())
                }
                .await;
                match result {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), count = batch.len(), "recording deliveries failed; retrying");
                        tokio::time::sleep(backoff.next_pause()).await;
                    }
                }
            }
            {
                let mut held = self.lock_held();
                for id in batch.drain(..) {
                    held.remove(&id);
                }
            }
            self.outcome_recorded();
        }
    }

    /// Renews every held lease each third of the lease time (queue.md §5.2).
    async fn renew_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let every = self.cfg.lease / 3;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => {
                    if *stop.borrow() && self.in_flight.load(Ordering::Acquire) == 0 {
                        return;
                    }
                }
            }
            let ids: Vec<Uuid> = self.lock_held().iter().copied().collect();
            if ids.is_empty() {
                continue;
            }
            let result = async {
                let client = self.pool.get().await?;
                let stmt = client.prepare_cached("SELECT workflow.dispatch_renew($1, $2)").await?;
                let renewed: i64 = client.query_one(&stmt, &[&ids, &self.cfg.lease.as_secs_f64()]).await?.try_get(0)?;
                Ok::<i64, anyhow::Error>(renewed)
            }
            .await;
            match result {
                Ok(n) => tracing::debug!(held = ids.len(), renewed = n, "leases renewed"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "lease renewal failed; retrying at the next interval"),
            }
        }
    }

    async fn maintenance_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.cfg.maintenance_interval) => {}
                _ = stop.changed() => return,
            }
            let result = async {
                let client = self.pool.get().await?;
                let counts: serde_json::Value = client.query_one("SELECT workflow.maint_run()", &[]).await?.try_get(0)?;
                Ok::<serde_json::Value, anyhow::Error>(counts)
            }
            .await;
            match result {
                Ok(counts) => {
                    let busy = counts.as_object().is_some_and(|m| m.values().any(|v| v.as_i64().unwrap_or(0) > 0));
                    if busy {
                        tracing::info!(%counts, "maintenance");
                    }
                    // Maintenance can make messages claimable (cleared unroutable marks).
                    self.wake.notify_one();
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "maintenance failed"),
            }
        }
    }
}
