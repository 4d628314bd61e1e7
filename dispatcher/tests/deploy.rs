//! The images and Kubernetes manifests, checked as far as a machine without Docker or a cluster
//! can: every manifest parses, the Deployment's probes, ports and settings are ones this
//! dispatcher serves and reads, its RBAC grants TokenReview, and the image builds and ships the
//! binary these tests run.

use anyhow::{anyhow, ensure, Context, Result};
use serde::Deserialize;
use serde_yaml::Value;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> Result<String> {
    std::fs::read_to_string(repo().join(rel)).with_context(|| format!("reading {rel}"))
}

/// Every document of every manifest file, with the file it came from.
fn manifests() -> Result<Vec<(String, Value)>> {
    let mut docs = Vec::new();
    let dir = repo().join("deploy/k8s");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
        let text = std::fs::read_to_string(&path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).with_context(|| format!("{name} does not parse"))?;
            if !v.is_null() {
                docs.push((name.clone(), v));
            }
        }
    }
    Ok(docs)
}

fn kind<'a>(docs: &'a [(String, Value)], k: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .map(|(_, v)| v)
        .find(|v| v["kind"] == k && v["metadata"]["name"] == name)
        .ok_or_else(|| anyhow!("no {k} {name} in deploy/k8s"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[test]
fn the_kubernetes_manifests_fit_this_dispatcher() -> Result<()> {
    let docs = manifests()?;
    for (file, v) in &docs {
        ensure!(v["apiVersion"].is_string() && v["kind"].is_string(), "{file}: a document without apiVersion/kind");
        ensure!(v["kind"] == "Kustomization" || v["metadata"]["name"].is_string(), "{file}: a {} without a name", s(&v["kind"]));
    }
    // kustomization.yaml lists files that exist.
    let kustomization = kind_of(&docs, "Kustomization")?;
    for r in kustomization["resources"].as_sequence().context("resources")? {
        ensure!(repo().join("deploy/k8s").join(s(r)).exists(), "kustomization names a missing {}", s(r));
    }

    let deployment = kind(&docs, "Deployment", "pgworld-dispatcher")?;
    let pod = &deployment["spec"]["template"];
    ensure!(deployment["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"], "selector matches the pod labels");
    let container = &pod["spec"]["containers"][0];
    let ports: Vec<(&str, u64)> = container["ports"]
        .as_sequence()
        .context("ports")?
        .iter()
        .map(|p| (s(&p["name"]), p["containerPort"].as_u64().unwrap_or_default()))
        .collect();
    ensure!(ports.contains(&("http", 3042)) && ports.contains(&("metrics", 9090)), "{ports:?}");
    // Probes: the health routes this binary serves, on a port the container declares.
    let health = read("dispatcher/src/api/health.rs")? + &read("dispatcher/src/main.rs")?;
    for (probe, path) in [("readinessProbe", "/ready"), ("livenessProbe", "/status"), ("startupProbe", "/status")] {
        let get = &container[probe]["httpGet"];
        ensure!(get["path"] == path, "{probe} path");
        ensure!(ports.iter().any(|(n, _)| *n == s(&get["port"])), "{probe} port {:?} is declared", get["port"]);
        ensure!(health.contains(&format!("\"{path}\"")), "the dispatcher serves {path}");
    }
    let annotations = &pod["metadata"]["annotations"];
    ensure!(annotations["prometheus.io/scrape"] == "true" && annotations["prometheus.io/port"] == "9090", "scrape annotations");
    ensure!(annotations["prometheus.io/path"] == "/metrics" && health.contains("\"/metrics\""), "metrics path");
    // Every setting the Deployment passes is one the dispatcher reads.
    let config = read("dispatcher/src/config.rs")? + &read("dispatcher/src/auth/mod.rs")? + &read("dispatcher/src/main.rs")?;
    let mut env = std::collections::BTreeMap::new();
    for e in container["env"].as_sequence().context("env")? {
        let name = s(&e["name"]);
        // RUST_LOG is read by tracing's EnvFilter, not by name in this crate.
        let read_by_name = config.contains(&format!("\"{name}\""));
        ensure!(
            read_by_name || (name == "RUST_LOG" && config.contains("from_default_env")),
            "the dispatcher does not read {name}"
        );
        env.insert(name, e);
    }
    ensure!(env.get("PGWORLD_MODE").is_some_and(|e| e["value"] == "k8s"), "Kubernetes mode");
    ensure!(
        env.get("DATABASE_URL").is_some_and(|e| e["valueFrom"]["secretKeyRef"]["name"] == "pgworld-database"),
        "DB URL secret"
    );
    let secret = kind(&docs, "Secret", "pgworld-database")?;
    ensure!(secret["stringData"]["url"].as_str().is_some_and(|u| u.starts_with("postgres://")), "secret holds a URL");
    ensure!(pod["spec"]["securityContext"]["runAsNonRoot"] == true, "non-root pod");

    // TokenReview needs system:auth-delegator for the pod's service account; the admin account
    // named in the settings exists.
    let sa = s(&pod["spec"]["serviceAccountName"]);
    kind(&docs, "ServiceAccount", sa)?;
    let binding = docs
        .iter()
        .map(|(_, v)| v)
        .find(|v| v["kind"] == "ClusterRoleBinding" && v["roleRef"]["name"] == "system:auth-delegator")
        .context("a ClusterRoleBinding to system:auth-delegator")?;
    ensure!(binding["subjects"].as_sequence().is_some_and(|subs| subs.iter().any(|x| x["name"] == sa)), "bound to {sa}");
    let admin = env.get("K8S_ADMIN_SERVICE_ACCOUNT").map(|e| s(&e["value"])).context("admin account")?;
    let (ns, name) = admin.split_once(':').context("namespace:name")?;
    let admin_sa = kind(&docs, "ServiceAccount", name)?;
    ensure!(admin_sa["metadata"]["namespace"] == ns, "admin account namespace");

    let service = kind(&docs, "Service", "pgworld-dispatcher")?;
    ensure!(service["spec"]["selector"] == pod["metadata"]["labels"], "service selects the pods");
    for p in service["spec"]["ports"].as_sequence().context("service ports")? {
        ensure!(ports.iter().any(|(n, _)| *n == s(&p["targetPort"])), "service targets a declared port");
    }
    ensure!(service["spec"]["ports"][0]["port"] == 3042, "the façade on 3042");
    Ok(())
}

fn kind_of<'a>(docs: &'a [(String, Value)], k: &str) -> Result<&'a Value> {
    docs.iter().map(|(_, v)| v).find(|v| v["kind"] == k).ok_or_else(|| anyhow!("no {k}"))
}

#[test]
fn the_images_build_what_the_tests_run() -> Result<()> {
    let dispatcher = read("Dockerfile.dispatcher")?;
    ensure!(dispatcher.contains("cargo build --release --locked -p pgworld-dispatcher"), "builds the tested package");
    ensure!(dispatcher.contains("target/release/pgworld-dispatcher"), "ships the release binary");
    ensure!(dispatcher.contains("USER 65532:65532") && dispatcher.contains(":nonroot"), "runs as non-root");
    ensure!(dispatcher.contains("EXPOSE 3042 9090"), "exposes the façade and metrics ports");
    let pg = read("Dockerfile.pg")?;
    ensure!(pg.contains("FROM postgres:17"), "PostgreSQL 17");
    ensure!(pg.contains("cargo-pgrx --version 0.18.0"), "the pinned cargo-pgrx");
    ensure!(pg.contains("extension/sql/pgworld--*.sql"), "ships the released and upgrade scripts");
    // The Rust toolchain the images use is the one these tests were built with or newer.
    let rustc = std::process::Command::new("rustc").arg("--version").output()?;
    let version = String::from_utf8_lossy(&rustc.stdout).split_whitespace().nth(1).unwrap_or_default().to_owned();
    let minor = |v: &str| {
        let m = v.split('.').nth(1).unwrap_or_default();
        m[..m.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(m.len())].parse::<u32>().unwrap_or_default()
    };
    for (file, text) in [("Dockerfile.dispatcher", &dispatcher), ("Dockerfile.pg", &pg)] {
        let image = text.lines().find_map(|l| l.split("rust:").nth(1).or_else(|| l.split("--default-toolchain ").nth(1)));
        let image = image.context(format!("{file} names a Rust version"))?;
        ensure!(minor(image) >= minor(&version), "{file} uses Rust {image}, older than the tested {version}");
    }
    Ok(())
}
