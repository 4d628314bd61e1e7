//! The Grafana dashboard (deploy/grafana) against a real dispatcher: every metric a panel
//! queries is one its `/metrics` serves, the dashboard covers what operators look at, and the
//! Kubernetes manifests ship it as a ConfigMap the Grafana sidecar picks up.

use anyhow::{ensure, Context, Result};
use pgworld_it::process::DispatcherProc;
use pgworld_it::TestDb;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pgworld-dispatcher");

fn repo_file(rel: &str) -> Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).with_context(|| format!("reading {rel}"))
}

/// The `pgworld_*` series names of every panel query.
fn queried(dashboard: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().map(|p| p.iter().collect()).unwrap_or_default();
    while let Some(p) = panels.pop() {
        panels.extend(p["panels"].as_array().into_iter().flatten());
        for target in p["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            for (i, _) in expr.match_indices("pgworld_") {
                let name: String = expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                out.insert(name);
            }
        }
    }
    // Template variables query series too.
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"].as_str().unwrap_or_default();
        if let Some(i) = q.find("pgworld_") {
            out.insert(q[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect());
        }
    }
    out
}

/// The series names `/metrics` serves: each `# TYPE` family, with a histogram's three series.
fn served(metrics: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in metrics.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) = (words.next(), words.next(), words.next(), words.next()) {
            if kind == "histogram" {
                out.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")));
            } else {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_served() -> Result<()> {
    let dashboard: Value = serde_json::from_str(&repo_file("deploy/grafana/pgworld.json")?)?;
    let db = TestDb::new().await?;
    let d = DispatcherProc::spawn(BIN, &db.dispatcher_url(), "grafana", &[])?;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", d.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        if let Ok(res) = http.get(format!("{base}/metrics")).send().await {
            if res.status().is_success() {
                break res.text().await?;
            }
        }
        ensure!(Instant::now() < deadline, "the dispatcher did not serve /metrics");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let served = served(&metrics);
    let queried = queried(&dashboard);
    let missing: Vec<_> = queried.difference(&served).collect();
    ensure!(missing.is_empty(), "the dashboard queries series /metrics does not serve: {missing:?}\n{metrics}");
    // What operators look at, each in some panel.
    for needed in [
        "pgworld_dispatch_total",
        "pgworld_dispatch_duration_seconds_bucket",
        "pgworld_queue_messages",
        "pgworld_dispatch_inflight",
        "pgworld_active_runs",
        "pgworld_http_requests_total",
        "pgworld_http_request_duration_seconds_bucket",
        "pgworld_tokenreview_total",
    ] {
        ensure!(queried.contains(needed), "no panel shows {needed}");
    }
    Ok(())
}

#[test]
fn the_manifests_ship_the_dashboard_to_the_grafana_sidecar() -> Result<()> {
    let k8s: serde_yaml::Value = serde_yaml::from_str(&repo_file("deploy/k8s/kustomization.yaml")?)?;
    let resources: Vec<&str> = k8s["resources"].as_sequence().context("resources")?.iter().filter_map(|r| r.as_str()).collect();
    ensure!(resources.contains(&"../grafana"), "deploy/k8s includes deploy/grafana: {resources:?}");
    let grafana: serde_yaml::Value = serde_yaml::from_str(&repo_file("deploy/grafana/kustomization.yaml")?)?;
    let generator = &grafana["configMapGenerator"][0];
    ensure!(generator["options"]["labels"]["grafana_dashboard"] == "1", "the sidecar's label: {generator:?}");
    ensure!(generator["options"]["disableNameSuffixHash"] == true, "a stable ConfigMap name");
    let files: Vec<&str> = generator["files"].as_sequence().context("files")?.iter().filter_map(|f| f.as_str()).collect();
    ensure!(files == ["pgworld.json"], "{files:?}");
    let dashboard: Value = serde_json::from_str(&repo_file("deploy/grafana/pgworld.json")?)?;
    ensure!(
        dashboard["uid"] == "pgworld-dispatcher" && dashboard["panels"].as_array().is_some_and(|p| p.len() >= 8),
        "a dashboard"
    );
    Ok(())
}
