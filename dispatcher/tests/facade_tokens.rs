//! API-token mode (`PGWORLD_API_TOKENS=1`), listening on every address: an admin token minted in
//! SQL provisions apps and their tokens through the façade; the same isolation check as
//! Kubernetes mode over every app-scoped route; revocation at once on the revoking replica and
//! within the cache TTL on another; tokens never in logs or metrics.

use anyhow::{ensure, Result};
use pgworld_it::process::DispatcherProc;
use pgworld_it::TestDb;
use reqwest::Method as M;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

mod common;
use common::Client;

async fn started(proc: &DispatcherProc) -> Result<Client> {
    let c = Client::new(proc.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.http.get(format!("{}/status", c.base)).send().await.is_err() {
        ensure!(Instant::now() < deadline, "no start: {}", proc.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(c)
}

fn token_mode(db: &TestDb, name: &str, cache_seconds: &str) -> Result<DispatcherProc> {
    DispatcherProc::spawn_on(
        "0.0.0.0",
        env!("CARGO_BIN_EXE_pgworld-dispatcher"),
        &db.dispatcher_url(),
        name,
        &[
            ("PGWORLD_API_TOKENS", "1"),
            ("PGWORLD_TOKEN_CACHE_S", cache_seconds),
            ("PGWORLD_METRICS_PORT", "0"),
            ("PGWORLD_DISPATCH_ENABLED", "false"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_authorize_isolate_and_revoke() -> Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    let admin: Value = su.query_one("SELECT workflow.admin_token_create('{\"label\": \"ops\"}')", &[]).await?.get(0);
    let admin = admin["token"].as_str().unwrap_or_default().to_owned();
    ensure!(admin.starts_with("pgw_"), "{admin}");
    let proc = token_mode(&db, "facade-tokens", "60")?;
    let c = started(&proc).await?;

    // Nothing is open: no token, a malformed one, a forged one.
    let (s, v) = c.call(M::GET, "/api/v1/apps/default/runs", None, None).await?;
    ensure!(s == 401 && v["message"] == "Unauthorized: missing or invalid Authorization header", "{s} {v}");
    let forged = format!("{}x", &admin[..admin.len() - 1]);
    for bad in ["pgw_1_AAAA", "pgw_999_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", forged.as_str(), "not-a-pgworld-token"] {
        let (s, v) = c.call(M::GET, "/api/v1/apps/default/runs", Some(bad), None).await?;
        ensure!(s == 401 && v["message"] == "Unauthorized: invalid credentials", "{bad}: {s} {v}");
        let (s, _) = c.call(M::GET, "/api/v1/apps/default/quotas", Some(bad), None).await?;
        ensure!(s == 403, "{bad} on an admin route: {s}");
    }

    // The admin token provisions two apps and a token for each; the secret is shown once.
    let mut tokens = std::collections::BTreeMap::new();
    for app in ["a", "b"] {
        let (s, v) = c.call(M::POST, "/api/v1/apps", Some(&admin), Some(json!({"appId": app}))).await?;
        ensure!(s == 201, "{s} {v} {}", proc.log_text());
        let (s, v) = c.call(M::POST, &format!("/api/v1/apps/{app}/tokens"), Some(&admin), Some(json!({"label": "ci"}))).await?;
        ensure!(s == 201 && v["appId"] == app && v["admin"] == false && v["label"] == "ci", "{s} {v}");
        tokens.insert(
            app,
            (v["token"].as_str().unwrap_or_default().to_owned(), v["tokenId"].as_str().unwrap_or_default().to_owned()),
        );
    }
    let (s, v) = c.call(M::GET, "/api/v1/apps/a/tokens", Some(&admin), None).await?;
    ensure!(s == 200 && v["data"].as_array().map(Vec::len) == Some(1), "{s} {v}");
    ensure!(
        v["data"][0].get("token").is_none() && !v.to_string().contains(&tokens["a"].0[10..]),
        "a listing shows no secret: {v}"
    );
    let (s, _) = c.call(M::POST, "/api/v1/apps/ghost/tokens", Some(&admin), Some(json!({}))).await?;
    ensure!(s == 404, "no token for an app that does not exist: {s}");
    let (a, b) = (tokens["a"].0.as_str(), tokens["b"].0.as_str());

    // Each token works on its own app only; an app token is no admin.
    let created = json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf"}});
    let (s, v) = c.call(M::POST, "/api/v1/apps/b/runs/wrun_b1/events", Some(b), Some(created)).await?;
    ensure!(s == 200, "{s} {v}");
    let (s, _) = c.call(M::GET, "/api/v1/apps/a/runs/wrun_b1", Some(a), None).await?;
    ensure!(s == 404, "app A cannot see app B's run: {s}");
    let (s, v) = c.call(M::GET, "/api/v1/apps/a/quotas", Some(a), None).await?;
    ensure!(s == 403 && v["message"] == "Forbidden: admin access required", "{s} {v}");
    let (s, _) = c.call(M::POST, "/api/v1/apps/a/tokens", Some(a), Some(json!({}))).await?;
    ensure!(s == 403, "an app token cannot mint tokens: {s}");
    c.refuses_on_every_app_route(a, "b").await?;
    let (s, _) = c.call(M::GET, "/api/v1/apps/nowhere/runs", Some(a), None).await?;
    ensure!(s == 403, "an unknown app is not disclosed to non-admins");
    let (s, v) = c.call(M::GET, "/api/v1/apps/nowhere/runs", Some(&admin), None).await?;
    ensure!(s == 404 && v["code"] == "WF_APP_NOT_FOUND", "{s} {v}");
    let (s, _) = c.call(M::GET, "/api/v1/apps/b/runs/wrun_b1", Some(&admin), None).await?;
    ensure!(s == 200, "the admin reaches every app");

    // Revocation: at once through the revoking replica (its cache is warm), and within the TTL on
    // a replica that cached the token before.
    let other = token_mode(&db, "facade-tokens-2", "1")?;
    let c2 = started(&other).await?;
    let (s, _) = c2.call(M::GET, "/api/v1/apps/b/runs", Some(b), None).await?;
    ensure!(s == 200, "the second replica accepts b: {s}");
    let (s, _) = c.call(M::GET, "/api/v1/apps/b/runs", Some(b), None).await?;
    ensure!(s == 200);
    let (s, v) = c.call(M::DELETE, &format!("/api/v1/apps/a/tokens/{}", tokens["b"].1), Some(&admin), None).await?;
    ensure!(s == 200 && v["revoked"] == false, "a token is revoked only through its own app: {s} {v}");
    let (s, v) = c.call(M::DELETE, &format!("/api/v1/apps/b/tokens/{}", tokens["b"].1), Some(&admin), None).await?;
    ensure!(s == 200 && v["revoked"] == true, "{s} {v}");
    let (s, _) = c.call(M::GET, "/api/v1/apps/b/runs", Some(b), None).await?;
    ensure!(s == 401, "revoked here, refused here at once: {s}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = c2.call(M::GET, "/api/v1/apps/b/runs", Some(b), None).await?;
        if s == 401 {
            break;
        }
        ensure!(Instant::now() < deadline, "the other replica still accepts a revoked token after 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, _) = c.call(M::GET, "/api/v1/apps/a/runs", Some(a), None).await?;
    ensure!(s == 200, "other tokens keep working");

    // Tokens are counted, never shown.
    let metrics = c.http.get(format!("{}/metrics", c.base)).send().await?.text().await?;
    ensure!(metrics.contains("pgworld_api_token_checks_total{result=\"cached\"}"), "{metrics}");
    for secret in [admin.as_str(), a, b] {
        let tail = &secret[secret.len() - 20..];
        ensure!(!metrics.contains(tail) && !proc.log_text().contains(tail) && !other.log_text().contains(tail), "a token leaked");
    }
    Ok(())
}
