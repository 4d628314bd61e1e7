//! A scriptable local HTTP receiver standing in for app pods: it records every delivery and
//! answers each as the test's script says (status, body, delay). Real HTTP over loopback.

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The body parsed as JSON, when it was JSON.
    pub json: Option<Value>,
}

impl Delivery {
    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// `meta.messageId` of a JSON delivery.
    pub fn message_id(&self) -> String {
        self.json.as_ref().and_then(|j| j.pointer("/meta/messageId")).and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    pub fn attempt(&self) -> i64 {
        self.json.as_ref().and_then(|j| j.pointer("/meta/attempt")).and_then(Value::as_i64).unwrap_or(-1)
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply { status: 200, body: String::new(), delay: Duration::ZERO }
    }
    pub fn status(status: u16) -> Reply {
        Reply { status, ..Reply::ok() }
    }
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: body.to_string(), delay: Duration::ZERO }
    }
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Script = Arc<dyn Fn(&Delivery) -> Reply + Send + Sync>;

struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    script: Mutex<Script>,
    arrived: Notify,
    /// Requests being answered right now, and the most there ever were.
    open: AtomicUsize,
    most_open: AtomicUsize,
}

#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Starts answering 200 to everything on a free loopback port.
    pub async fn start() -> Result<Receiver> {
        let shared = Arc::new(Shared {
            deliveries: Mutex::new(Vec::new()),
            script: Mutex::new(Arc::new(|_: &Delivery| Reply::ok())),
            arrived: Notify::new(),
            open: AtomicUsize::new(0),
            most_open: AtomicUsize::new(0),
        });
        let s = Arc::clone(&shared);
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = Arc::clone(&s);
            async move {
                let now_open = s.open.fetch_add(1, Ordering::SeqCst) + 1;
                s.most_open.fetch_max(now_open, Ordering::SeqCst);
                let d = Delivery {
                    at: Instant::now(),
                    path: uri.path().to_owned(),
                    json: serde_json::from_slice(&body).ok(),
                    headers,
                    body: body.to_vec(),
                };
                let script = Arc::clone(&s.script.lock().unwrap_or_else(PoisonError::into_inner));
                let reply = script(&d);
                s.deliveries.lock().unwrap_or_else(PoisonError::into_inner).push(d);
                s.arrived.notify_waiters();
                if !reply.delay.is_zero() {
                    tokio::time::sleep(reply.delay).await;
                }
                s.open.fetch_sub(1, Ordering::SeqCst);
                let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, [("content-type", "application/json")], reply.body).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { base, shared })
    }

    pub fn script(&self, f: impl Fn(&Delivery) -> Reply + Send + Sync + 'static) {
        *self.shared.script.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(f);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The most requests this receiver was answering at one time.
    pub fn most_concurrent(&self) -> usize {
        self.shared.most_open.load(Ordering::SeqCst)
    }

    pub fn count(&self) -> usize {
        self.shared.deliveries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Waits until at least `n` deliveries arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            if self.count() >= n {
                return Ok(self.deliveries());
            }
            let left = deadline.checked_duration_since(Instant::now()).context("deadline passed")?;
            if tokio::time::timeout(left.min(Duration::from_millis(200)), arrived).await.is_err() && Instant::now() >= deadline {
                bail!("waited {timeout:?} for {n} deliveries, got {}", self.count());
            }
        }
    }

    /// Handler endpoints of this receiver under `prefix` (workflow, step, webhook).
    pub fn endpoints(&self, prefix: &str) -> Value {
        serde_json::json!({
            "workflow": format!("{}/{prefix}/workflow", self.base),
            "step": format!("{}/{prefix}/step", self.base),
            "webhook": format!("{}/{prefix}/webhook", self.base),
        })
    }
}
