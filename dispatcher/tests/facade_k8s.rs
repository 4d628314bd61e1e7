//! Kubernetes mode against a local HTTPS server speaking the TokenReview API, set up the way a
//! pod's service-account directory would be (token and CA bundle): authenticated and rejected
//! tokens, the admin identity, bindings, app isolation on every app-scoped route, the review
//! cache, and the API server being down.

use anyhow::{ensure, Result};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use pgworld_it::process::DispatcherProc;
use pgworld_it::TestDb;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::rustls;

mod common;
use common::Client;

const OWN_TOKEN: &str = "dispatcher-own-token";

/// Accepts TLS connections for axum::serve.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.tls.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

struct FakeApiServer {
    url: String,
    reviews: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

/// An HTTPS TokenReview endpoint: `<who>-token` is `system:serviceaccount:<ns>:<who>` for the
/// identities below; anything else is not authenticated. Writes the pod-style directory.
async fn fake_api_server(sa_dir: &std::path::Path) -> Result<FakeApiServer> {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    std::fs::write(sa_dir.join("ca.crt"), cert.cert.pem())?;
    std::fs::write(sa_dir.join("token"), OWN_TOKEN)?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)?;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://127.0.0.1:{}", tcp.local_addr()?.port());
    let reviews = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let (r, d) = (Arc::clone(&reviews), Arc::clone(&down));
    let app = axum::Router::new().route(
        "/apis/authentication.k8s.io/v1/tokenreviews",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (r, d) = (Arc::clone(&r), Arc::clone(&d));
            async move {
                if d.load(Ordering::SeqCst) {
                    return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"kind": "Status", "status": "Failure"})));
                }
                let own = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {OWN_TOKEN}"));
                if !own {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({"kind": "Status", "status": "Failure"})));
                }
                r.fetch_add(1, Ordering::SeqCst);
                let review: Value = serde_json::from_slice(&body).unwrap_or_default();
                let token = review.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default();
                let user = match token {
                    "admin-token" => Some("system:serviceaccount:ops:admin"),
                    "a-token" => Some("system:serviceaccount:team-a:app"),
                    "b-token" => Some("system:serviceaccount:team-b:app"),
                    "lonely-token" => Some("system:serviceaccount:team-c:app"),
                    "human-token" => Some("jane@example.com"),
                    _ => None,
                };
                let status = match user {
                    Some(u) => json!({"authenticated": true, "user": {"username": u}}),
                    None => json!({"authenticated": false, "error": "invalid token"}),
                };
                (
                    StatusCode::CREATED,
                    axum::Json(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                                         "spec": review["spec"], "status": status})),
                )
            }
        }),
    );
    let listener = TlsListener { tcp, tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)) };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(FakeApiServer { url, reviews, down })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_bindings_and_app_isolation() -> Result<()> {
    let db = TestDb::new().await?;
    let sa_dir = std::env::temp_dir().join(format!("pgworld-sa-{}-{}", std::process::id(), db.name));
    std::fs::create_dir_all(&sa_dir)?;
    let api = fake_api_server(&sa_dir).await?;
    // No PGWORLD_MODE: the token file in the service-account directory selects k8s mode.
    let proc = DispatcherProc::spawn(
        env!("CARGO_BIN_EXE_pgworld-dispatcher"),
        &db.dispatcher_url(),
        "facade-k8s",
        &[
            ("PLT_WORLD_SA_PATH", &sa_dir.to_string_lossy()),
            ("K8S_API_SERVER", &api.url),
            ("K8S_ADMIN_SERVICE_ACCOUNT", "ops:admin"),
            ("PGWORLD_METRICS_PORT", "0"),
            ("PGWORLD_DISPATCH_ENABLED", "false"),
        ],
    )?;
    let c = Client::new(proc.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.http.get(format!("{}/status", c.base)).send().await.is_err() {
        ensure!(Instant::now() < deadline, "no start: {}", proc.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    use reqwest::Method as M;

    // The admin provisions two apps and binds a service account to each.
    for (app, ns) in [("a", "team-a"), ("b", "team-b")] {
        let (s, v) = c.call(M::POST, "/api/v1/apps", Some("admin-token"), Some(json!({"appId": app}))).await?;
        ensure!(s == 201, "{s} {v} {}", proc.log_text());
        let (s, v) = c
            .call(
                M::POST,
                &format!("/api/v1/apps/{app}/k8s-binding"),
                Some("admin-token"),
                Some(json!({"namespace": ns, "serviceAccount": "app"})),
            )
            .await?;
        ensure!(s == 201 && v["appId"] == app, "{s} {v}");
    }
    let (s, v) = c
        .call(
            M::POST,
            "/api/v1/apps/ghost/k8s-binding",
            Some("admin-token"),
            Some(json!({"namespace": "x", "serviceAccount": "y"})),
        )
        .await?;
    ensure!(s == 404 && v["message"] == "Application ghost not found", "{s} {v}");

    // Authentication failures.
    let (s, v) = c.call(M::GET, "/api/v1/apps/a/runs", None, None).await?;
    ensure!(s == 401 && v["message"] == "Unauthorized: missing or invalid Authorization header", "{s} {v}");
    for bad in ["garbage", "human-token", "lonely-token"] {
        let (s, v) = c.call(M::GET, "/api/v1/apps/a/runs", Some(bad), None).await?;
        ensure!(s == 401 && v["message"] == "Unauthorized: invalid credentials", "{bad}: {s} {v}");
        let (s, _) = c.call(M::GET, "/api/v1/apps/a/quotas", Some(bad), None).await?;
        ensure!(s == 403, "{bad} on an admin route: {s}");
    }
    let (s, v) = c.call(M::GET, "/api/v1/apps/a/quotas", Some("a-token"), None).await?;
    ensure!(s == 403 && v["message"] == "Forbidden: admin access required", "{s} {v}");

    // Each app's token works on its own app, and its data is invisible to the other.
    let created = json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf"}});
    let (s, v) = c.call(M::POST, "/api/v1/apps/b/runs/wrun_b1/events", Some("b-token"), Some(created.clone())).await?;
    ensure!(s == 200, "{s} {v}");
    let (s, _) = c.call(M::GET, "/api/v1/apps/b/runs/wrun_b1", Some("b-token"), None).await?;
    ensure!(s == 200);
    let (s, _) = c.call(M::GET, "/api/v1/apps/a/runs/wrun_b1", Some("a-token"), None).await?;
    ensure!(s == 404, "app A cannot see app B's run: {s}");
    let (s, v) = c.call(M::GET, "/api/v1/apps/a/runs", Some("a-token"), None).await?;
    ensure!(s == 200 && v["data"] == json!([]), "{s} {v}");

    // Every app-scoped route of the OpenAPI document refuses app A's token on app B.
    c.refuses_on_every_app_route("a-token", "b").await?;
    let (s, _) = c.call(M::GET, "/api/v1/apps/nowhere/runs", Some("a-token"), None).await?;
    ensure!(s == 403, "an unknown app is not disclosed to non-admins");
    let (s, v) = c.call(M::GET, "/api/v1/apps/nowhere/runs", Some("admin-token"), None).await?;
    ensure!(s == 404 && v["code"] == "WF_APP_NOT_FOUND", "{s} {v}");
    let (s, _) = c.call(M::GET, "/api/v1/apps/b/runs/wrun_b1", Some("admin-token"), None).await?;
    ensure!(s == 200, "the admin reaches every app");

    // Successful reviews are cached; a removed binding stops working at once.
    let before = api.reviews.load(Ordering::SeqCst);
    for _ in 0..5 {
        c.call(M::GET, "/api/v1/apps/a/runs", Some("a-token"), None).await?;
    }
    ensure!(api.reviews.load(Ordering::SeqCst) == before, "cached identities need no review");
    let (s, _) = c
        .call(
            M::DELETE,
            "/api/v1/apps/a/k8s-binding",
            Some("admin-token"),
            Some(json!({"namespace": "team-a", "serviceAccount": "app"})),
        )
        .await?;
    ensure!(s == 200);
    let (s, _) = c.call(M::GET, "/api/v1/apps/a/runs", Some("a-token"), None).await?;
    ensure!(s == 401, "no bindings left: {s}");

    // The API server failing is a 503, not the caller's 401; public routes stay open.
    api.down.store(true, Ordering::SeqCst);
    let (s, v) = c.call(M::GET, "/api/v1/apps/b/runs", Some("new-token"), None).await?;
    ensure!(s == 503 && v["code"] == "WF_UNAVAILABLE", "{s} {v}");
    let (s, _) = c.call(M::GET, "/status", None, None).await?;
    ensure!(s == 200);
    let metrics = c.http.get(format!("{}/metrics", c.base)).send().await?.text().await?;
    ensure!(
        metrics.contains("pgworld_tokenreview_total{result=\"error\"}") && metrics.contains("result=\"cached\""),
        "{metrics}"
    );
    let _ = std::fs::remove_dir_all(&sa_dir);
    Ok(())
}
