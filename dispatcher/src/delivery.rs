//! One delivery attempt: POST the message to the chosen handler URL and classify what happened
//! (spec/queue.md §7, §8.1). Nothing here touches the database.

use crate::config::DispatchConfig;
use anyhow::{Context, Result};
use pgworld_core::queue::{self, Failure, Outcome};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};
use std::error::Error as _;
use std::time::Duration;
use uuid::Uuid;

/// A claimed message, as `workflow.dispatch_claim` returns it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub lease_id: Uuid,
    pub id: i64,
    pub queue_name: String,
    pub url: Option<String>,
    pub body: ClaimedBody,
    pub headers: Option<Value>,
    pub attempts: i32,
    pub deployment_version: String,
}

#[derive(Debug, Clone)]
pub enum ClaimedBody {
    Json(Value),
    Cbor(Vec<u8>),
}

impl Claimed {
    pub fn from_row(row: &tokio_postgres::Row) -> Result<Claimed> {
        let encoding: String = row.try_get("encoding")?;
        let body = if encoding == "cbor" {
            ClaimedBody::Cbor(row.try_get::<_, Option<Vec<u8>>>("body_cbor")?.context("cbor message without bytes")?)
        } else {
            ClaimedBody::Json(row.try_get::<_, Option<Value>>("body_json")?.context("json message without a body")?)
        };
        Ok(Claimed {
            lease_id: row.try_get("lease_id")?,
            id: row.try_get("id")?,
            queue_name: row.try_get("queue_name")?,
            url: row.try_get("url")?,
            body,
            headers: row.try_get("headers")?,
            attempts: row.try_get("attempts")?,
            deployment_version: row.try_get("deployment_version")?,
        })
    }

    fn message_id(&self) -> String {
        format!("msg_{}", self.id)
    }

    /// The request body and its content type (queue.md §7).
    fn encode(&self) -> (Vec<u8>, &'static str) {
        let attempt = u64::try_from(self.attempts).unwrap_or_default();
        match &self.body {
            ClaimedBody::Json(message) => {
                let mut body = json!({
                    "message": message,
                    "meta": {"queueName": self.queue_name, "messageId": self.message_id(), "attempt": attempt},
                });
                // pgworld addition: the run a JSON delivery is for, at the top level, so proxies,
                // access logs and test harnesses see it without knowing the message schema.
                if let Some(run) = message.get("runId").or_else(|| message.get("workflowRunId")).filter(|v| v.is_string()) {
                    body["runId"] = run.clone();
                }
                (body.to_string().into_bytes(), "application/json")
            }
            ClaimedBody::Cbor(message) => {
                (pgworld_core::cbor::delivery_body(message, &self.queue_name, &self.message_id(), attempt), "application/cbor")
            }
        }
    }

    fn extra_headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(Value::Object(h)) = &self.headers {
            for (k, v) in h {
                let (Ok(name), Some(Ok(value))) = (HeaderName::try_from(k.as_str()), v.as_str().map(HeaderValue::from_str))
                else {
                    continue;
                };
                if queue::forwardable_header(k) {
                    map.insert(name, value);
                }
            }
        }
        map
    }
}

pub struct Deliverer {
    client: reqwest::Client,
    headers_timeout: Duration,
    body_timeout: Duration,
}

impl Deliverer {
    pub fn new(cfg: &DispatchConfig) -> Result<Deliverer> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.connect_timeout)
            .user_agent(concat!("pgworld-dispatcher/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Deliverer { client, headers_timeout: cfg.headers_timeout, body_timeout: cfg.body_timeout })
    }

    pub async fn deliver(&self, m: &Claimed) -> Outcome {
        let Some(url) = m.url.as_deref() else {
            // The handlers vanished between the claim's check and its URL pick.
            return failed("ROUTE_NOT_FOUND", "no handler URL for the message's version".into(), None, None);
        };
        let (body, content_type) = m.encode();
        let request = self.client.post(url).headers(m.extra_headers()).header(CONTENT_TYPE, content_type).body(body);
        let response = match tokio::time::timeout(self.headers_timeout, request.send()).await {
            Err(_) => {
                return failed("UND_ERR_HEADERS_TIMEOUT", "handler sent no response headers in time".into(), None, Some(url))
            }
            Ok(Err(e)) => return transport_failure(&e, url),
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        let wanted = (200..300).contains(&status) || status == 425;
        let body = if wanted {
            match self.read_body(response).await {
                Ok(b) => b,
                Err(outcome) => return with_url(outcome, url),
            }
        } else {
            Vec::new()
        };
        queue::classify_response(status, &body, url)
    }

    /// Reads up to 1 MiB; a gap longer than the body timeout between chunks is a failure.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Outcome> {
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout(self.body_timeout, response.chunk()).await {
                Err(_) => {
                    return Err(failed("UND_ERR_BODY_TIMEOUT", "handler stalled while sending its response".into(), None, None))
                }
                Ok(Err(e)) => return Err(transport_failure(&e, "")),
                Ok(Ok(None)) => return Ok(body),
                Ok(Ok(Some(chunk))) => {
                    let room = queue::MAX_RESPONSE_BODY.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= queue::MAX_RESPONSE_BODY {
                        return Ok(body);
                    }
                }
            }
        }
    }
}

/// A failure found while reading the body names the handler it came from.
fn with_url(outcome: Outcome, url: &str) -> Outcome {
    match outcome {
        Outcome::Failed(mut f) => {
            f.url = Some(queue::sanitize_url(url));
            Outcome::Failed(f)
        }
        other => other,
    }
}

fn failed(code: &str, message: String, status_code: Option<u16>, url: Option<&str>) -> Outcome {
    Outcome::Failed(Failure {
        code: code.into(),
        message,
        status_code,
        url: url.filter(|u| !u.is_empty()).map(queue::sanitize_url),
    })
}

/// Maps a transport error to the codes Platformatic reports (queue.md §8.1).
fn transport_failure(e: &reqwest::Error, url: &str) -> Outcome {
    let url = Some(url);
    let mut text = e.to_string();
    let mut source = e.source();
    let mut io_kind = None;
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = io_kind.or(Some(io.kind()));
        }
        source = s.source();
    }
    use std::io::ErrorKind as K;
    let code = if e.is_connect() && e.is_timeout() {
        "UND_ERR_CONNECT_TIMEOUT"
    } else if matches!(io_kind, Some(K::ConnectionRefused)) {
        "ECONNREFUSED"
    } else if text.contains("dns error") || text.contains("failed to lookup address") {
        "ENOTFOUND"
    } else if matches!(io_kind, Some(K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof))
        || text.contains("connection closed before message completed")
        || text.contains("IncompleteMessage")
    {
        "ECONNRESET"
    } else {
        "DISPATCH_ERROR"
    };
    failed(code, queue::truncate(&text, 512), None, url)
}
