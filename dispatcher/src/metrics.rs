//! Prometheus metrics (http-api.md §4.1), kept in process and rendered as text on scrape. The
//! queue and run gauges come from the database at scrape time.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}", self.counts.get(i).copied().unwrap_or(0));
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// What a delivery came to, for `pgworld_dispatch_total{outcome}`.
#[derive(Debug, Clone, Copy)]
pub enum DispatchOutcome {
    Success,
    Rescheduled,
    Failed,
    Dead,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    request_seconds: Mutex<BTreeMap<&'static str, Histogram>>,
    dispatch: [AtomicU64; 4],
    dispatch_seconds: Mutex<Histogram>,
    inflight: AtomicI64,
    token_reviews: Mutex<BTreeMap<&'static str, u64>>,
    api_tokens: Mutex<BTreeMap<&'static str, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        _ => "OTHER",
    }
}

/// Escapes a label value for the text format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn request(&self, route: &'static str, method: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests).entry((route, method_label(method), status)).or_default() += 1;
        lock(&self.request_seconds).entry(route).or_default().observe(elapsed.as_secs_f64());
    }

    pub fn delivery_started(&self) {
        self.inflight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn delivery_finished(&self, outcome: DispatchOutcome, elapsed: Duration) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
        self.dispatch[outcome as usize].fetch_add(1, Ordering::Relaxed);
        lock(&self.dispatch_seconds).observe(elapsed.as_secs_f64());
    }

    pub fn token_review(&self, result: &'static str) {
        *lock(&self.token_reviews).entry(result).or_default() += 1;
    }

    /// An API-token check: `cached`, `authenticated` or `rejected` (never the token).
    pub fn api_token(&self, result: &'static str) {
        *lock(&self.api_tokens).entry(result).or_default() += 1;
    }

    pub fn render(&self, gauges: Option<&Value>) -> String {
        let mut out = String::new();
        out.push_str("# HELP pgworld_http_requests_total Façade requests by route, method and status.\n");
        out.push_str("# TYPE pgworld_http_requests_total counter\n");
        for ((route, method, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "pgworld_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                esc(route)
            );
        }
        out.push_str("# HELP pgworld_http_request_duration_seconds Façade request latency by route.\n");
        out.push_str("# TYPE pgworld_http_request_duration_seconds histogram\n");
        for (route, h) in lock(&self.request_seconds).iter() {
            h.render(&mut out, "pgworld_http_request_duration_seconds", &format!("route=\"{}\"", esc(route)));
        }
        out.push_str("# HELP pgworld_dispatch_total Delivery attempts by outcome.\n# TYPE pgworld_dispatch_total counter\n");
        for (i, name) in ["success", "rescheduled", "failed", "dead"].iter().enumerate() {
            let _ = writeln!(out, "pgworld_dispatch_total{{outcome=\"{name}\"}} {}", self.dispatch[i].load(Ordering::Relaxed));
        }
        out.push_str("# HELP pgworld_dispatch_duration_seconds Delivery latency (request sent to outcome known).\n");
        out.push_str("# TYPE pgworld_dispatch_duration_seconds histogram\n");
        lock(&self.dispatch_seconds).render(&mut out, "pgworld_dispatch_duration_seconds", "");
        out.push_str("# HELP pgworld_dispatch_inflight Deliveries in progress.\n# TYPE pgworld_dispatch_inflight gauge\n");
        let _ = writeln!(out, "pgworld_dispatch_inflight {}", self.inflight.load(Ordering::Relaxed));
        out.push_str("# HELP pgworld_tokenreview_total TokenReview calls by result.\n# TYPE pgworld_tokenreview_total counter\n");
        for (result, n) in lock(&self.token_reviews).iter() {
            let _ = writeln!(out, "pgworld_tokenreview_total{{result=\"{result}\"}} {n}");
        }
        out.push_str(
            "# HELP pgworld_api_token_checks_total API-token checks by result.\n# TYPE pgworld_api_token_checks_total counter\n",
        );
        for (result, n) in lock(&self.api_tokens).iter() {
            let _ = writeln!(out, "pgworld_api_token_checks_total{{result=\"{result}\"}} {n}");
        }
        if let Some(g) = gauges {
            out.push_str("# HELP pgworld_queue_messages Queue messages by app and state (delivered excluded).\n");
            out.push_str("# TYPE pgworld_queue_messages gauge\n");
            for row in g.get("queue").and_then(Value::as_array).into_iter().flatten() {
                let (app, state) = (row["app"].as_str().unwrap_or_default(), row["state"].as_str().unwrap_or_default());
                let _ = writeln!(out, "pgworld_queue_messages{{app=\"{}\",state=\"{}\"}} {}", esc(app), esc(state), row["count"]);
            }
            out.push_str("# HELP pgworld_active_runs Pending and running runs by app and deployment version.\n");
            out.push_str("# TYPE pgworld_active_runs gauge\n");
            for row in g.get("activeRuns").and_then(Value::as_array).into_iter().flatten() {
                let (app, version) = (row["app"].as_str().unwrap_or_default(), row["version"].as_str().unwrap_or_default());
                let _ =
                    writeln!(out, "pgworld_active_runs{{app=\"{}\",version=\"{}\"}} {}", esc(app), esc(version), row["count"]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.request("/api/v1/apps/{appId}/runs", "GET", 200, Duration::from_millis(3));
        m.delivery_started();
        m.delivery_finished(DispatchOutcome::Dead, Duration::from_millis(20));
        m.token_review("authenticated");
        let text = m.render(Some(&json!({"queue": [{"app": "default", "state": "dead", "count": 2}], "activeRuns": [{"app": "default", "version": "v\"1", "count": 3}]})));
        assert!(text.contains("pgworld_http_requests_total{route=\"/api/v1/apps/{appId}/runs\",method=\"GET\",status=\"200\"} 1"));
        assert!(text.contains("pgworld_http_request_duration_seconds_bucket{route=\"/api/v1/apps/{appId}/runs\",le=\"0.005\"} 1"));
        assert!(text.contains("pgworld_dispatch_total{outcome=\"dead\"} 1"));
        assert!(text.contains("pgworld_dispatch_duration_seconds_count 1"));
        assert!(text.contains("pgworld_dispatch_inflight 0"));
        assert!(text.contains("pgworld_tokenreview_total{result=\"authenticated\"} 1"));
        assert!(text.contains("pgworld_queue_messages{app=\"default\",state=\"dead\"} 2"));
        assert!(text.contains(r#"pgworld_active_runs{app="default",version="v\"1"} 3"#));
    }
}
