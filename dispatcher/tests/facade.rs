//! The façade over real HTTP against the real binary and a real cluster, single-tenant mode:
//! every route's success and error cases, the error body, content types, body limits, unknown
//! routes, CBOR byte-exactness and a live stream read while writing.

use anyhow::{ensure, Context, Result};
use pgworld_it::process::DispatcherProc;
use pgworld_it::receiver::Receiver;
use pgworld_it::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Facade {
    base: String,
    http: reqwest::Client,
    _proc: DispatcherProc,
}

impl Facade {
    async fn start(db: &TestDb, name: &str) -> Result<Facade> {
        let proc = DispatcherProc::spawn(
            env!("CARGO_BIN_EXE_pgworld-dispatcher"),
            &db.dispatcher_url(),
            name,
            &[("PGWORLD_MODE", "single"), ("PGWORLD_METRICS_PORT", "0")],
        )?;
        let base = format!("http://127.0.0.1:{}", proc.port);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            ensure!(Instant::now() < deadline, "the façade did not start: {}", proc.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Facade { base, http, _proc: proc })
    }

    /// Sends a request; returns the status and the body as JSON (Null when not JSON).
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<(StatusCode, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let bytes = res.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>, want: u16) -> Result<Value> {
        let (status, value) = self.send(method.clone(), path, body).await?;
        ensure!(status.as_u16() == want, "{method} {path}: {status} {value}");
        Ok(value)
    }

    async fn err(&self, method: Method, path: &str, body: Option<Value>, want: u16, code: &str) -> Result<Value> {
        let (status, value) = self.send(method.clone(), path, body).await?;
        ensure!(status.as_u16() == want, "{method} {path}: {status} {value}");
        ensure!(value["statusCode"] == want && value["code"] == code, "{method} {path}: {value}");
        ensure!(value["message"].is_string() && (want >= 500 || value["error"] == value["message"]), "{value}");
        Ok(value)
    }
}

const APP: &str = "/api/v1/apps/whatever";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_events_steps_and_hooks_routes() -> Result<()> {
    let db = TestDb::new().await?;
    let f = Facade::start(&db, "facade-runs").await?;
    let created = f
        .ok(
            Method::POST,
            &format!("{APP}/runs/null/events"),
            Some(json!({"eventType": "run_created",
            "eventData": {"deploymentId": "v1", "workflowName": "wf", "input": "aGk="}})),
            200,
        )
        .await?;
    let run = created["run"]["runId"].as_str().context("minted run id")?.to_owned();
    ensure!(created["event"]["eventId"] == "evnt_00000000000000000000000001" && created["maxEvents"] == 25000, "{created}");
    let r = format!("{APP}/runs/{run}");
    f.ok(Method::POST, &format!("{r}/events"), Some(json!({"eventType": "run_started"})), 200).await?;
    f.ok(
        Method::POST,
        &format!("{r}/events"),
        Some(json!({"eventType": "step_created", "correlationId": "s1", "eventData": {"stepName": "add", "input": []}})),
        200,
    )
    .await?;
    f.ok(
        Method::POST,
        &format!("{r}/events"),
        Some(json!({"eventType": "hook_created", "correlationId": "h1", "eventData": {"token": "tok/1"}})),
        200,
    )
    .await?;
    f.ok(Method::POST, &format!("{r}/events"), Some(json!({"eventType": "step_retrying", "correlationId": "s1", "eventData": {"error": {"m": 1}, "retryAfter": "2099-01-01T00:00:00Z"}})), 200).await?;

    // 425 carries meta.retryAfter and a Retry-After header.
    let res = f
        .http
        .post(format!("{}{r}/events", f.base))
        .json(&json!({"eventType": "step_started", "correlationId": "s1"}))
        .send()
        .await?;
    ensure!(res.status().as_u16() == 425 && res.headers().get("retry-after").is_some(), "{:?}", res.headers());
    let body: Value = res.json().await?;
    ensure!(body["meta"]["retryAfter"] == "2099-01-01T00:00:00.000Z" && body["code"] == "WF_TOO_EARLY", "{body}");

    let events = f.ok(Method::GET, &format!("{r}/events?limit=2&sortOrder=desc"), None, 200).await?;
    ensure!(events["data"].as_array().map(Vec::len) == Some(2) && events["hasMore"] == true, "{events}");
    f.ok(Method::GET, &format!("{r}/events/evnt_00000000000000000000000002"), None, 200).await?;
    f.err(Method::GET, &format!("{r}/events/evnt_00000000000000000000000099"), None, 404, "WF_EVENT_NOT_FOUND").await?;
    let by = f.ok(Method::GET, &format!("{APP}/events/by-correlation?correlationId=s1&runId={run}"), None, 200).await?;
    ensure!(by["data"].as_array().map(Vec::len) == Some(2), "{by}");
    f.err(Method::GET, &format!("{APP}/events/by-correlation"), None, 400, "WF_BAD_REQUEST").await?;
    ensure!(f.ok(Method::GET, &r, None, 200).await?["status"] == "running");
    ensure!(f.ok(Method::GET, &format!("{r}?resolveData=none"), None, 200).await?.get("input").is_none());
    let runs = f.ok(Method::GET, &format!("{APP}/runs?status=running&workflowName=wf"), None, 200).await?;
    ensure!(runs["data"].as_array().map(Vec::len) == Some(1), "{runs}");
    f.err(Method::GET, &format!("{APP}/runs?status=sleepy"), None, 400, "WF_BAD_REQUEST").await?;
    f.err(Method::GET, &format!("{APP}/runs?limit=0"), None, 400, "WF_BAD_REQUEST").await?;
    f.ok(Method::GET, &format!("{r}/steps/s1"), None, 200).await?;
    f.err(Method::GET, &format!("{r}/steps/nope"), None, 404, "WF_STEP_NOT_FOUND").await?;
    ensure!(f.ok(Method::GET, &format!("{r}/steps"), None, 200).await?["data"].as_array().map(Vec::len) == Some(1));
    // Percent-encoded identifiers reach the function decoded once.
    ensure!(f.ok(Method::GET, &format!("{APP}/hooks/by-token/tok%2F1"), None, 200).await?["hookId"] == "h1");
    f.ok(Method::GET, &format!("{APP}/hooks/h1"), None, 200).await?;
    f.err(Method::GET, &format!("{APP}/hooks/zz"), None, 404, "WF_HOOK_NOT_FOUND").await?;
    ensure!(f.ok(Method::GET, &format!("{APP}/hooks?runId={run}"), None, 200).await?["data"].as_array().map(Vec::len) == Some(1));

    // Run actions.
    let replay = f.ok(Method::POST, &format!("{r}/replay"), None, 200).await?;
    ensure!(replay["status"] == "pending" && replay["input"] == "aGk=" && replay["runId"] != run, "{replay}");
    ensure!(f.ok(Method::POST, &format!("{r}/wake-up"), None, 200).await? == json!({"stoppedCount": 0}));
    let cancelled = f.ok(Method::POST, &format!("{r}/cancel"), Some(json!({"cancelReason": "test"})), 200).await?;
    ensure!(cancelled["status"] == "cancelled", "{cancelled}");
    f.ok(Method::POST, &format!("{r}/cancel"), None, 200).await?;
    // A late workflow message for the finished run: the runtime's run_started is answered with
    // the run and no event (the @platformatic/world client throws on every 4xx), and nothing is
    // written. The same for a completed run.
    let count = |v: &Value| v["data"].as_array().map(Vec::len);
    let before = count(&f.ok(Method::GET, &format!("{r}/events?limit=1000"), None, 200).await?);
    let late = f.ok(Method::POST, &format!("{r}/events"), Some(json!({"eventType": "run_started"})), 200).await?;
    ensure!(late["event"].is_null() && late["run"]["status"] == "cancelled" && late["run"]["runId"] == run, "{late}");
    ensure!(count(&f.ok(Method::GET, &format!("{r}/events?limit=1000"), None, 200).await?) == before, "nothing appended");
    let done = f
        .ok(
            Method::POST,
            &format!("{APP}/runs/null/events"),
            Some(json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "late"}})),
            200,
        )
        .await?["run"]["runId"]
        .clone();
    let d = format!("{APP}/runs/{}", done.as_str().context("run id")?);
    f.ok(Method::POST, &format!("{d}/events"), Some(json!({"eventType": "run_started"})), 200).await?;
    f.ok(Method::POST, &format!("{d}/events"), Some(json!({"eventType": "run_completed", "eventData": {"output": "ok"}})), 200)
        .await?;
    let late = f.ok(Method::POST, &format!("{d}/events"), Some(json!({"eventType": "run_started"})), 200).await?;
    ensure!(late["event"].is_null() && late["run"]["status"] == "completed" && late["run"]["output"] == "ok", "{late}");
    f.err(Method::POST, &format!("{APP}/runs/missing/cancel"), None, 404, "WF_RUN_NOT_FOUND").await?;
    f.err(Method::GET, &format!("{APP}/workflows/wf/template"), None, 404, "WF_NO_COMPLETED_RUN").await?;
    f.err(Method::POST, &format!("{APP}/runs/null/events"), Some(json!({"eventType": "nope"})), 400, "WF_BAD_REQUEST").await?;
    f.err(Method::POST, &format!("{APP}/runs/null/events"), Some(json!({"eventType": 7})), 400, "WF_BAD_REQUEST").await?;
    f.err(Method::POST, &format!("{r}/events?eventCount=-1"), Some(json!({"eventType": "run_started"})), 400, "WF_BAD_REQUEST")
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_handlers_keys_versions_quotas_and_apps_routes() -> Result<()> {
    let db = TestDb::new().await?;
    let f = Facade::start(&db, "facade-queue").await?;
    let receiver = Receiver::start().await?;
    ensure!(f.ok(Method::POST, "/api/v1/apps", Some(json!({"appId": "shop"})), 201).await? == json!({"appId": "shop"}));
    ensure!(f.ok(Method::POST, "/api/v1/apps", Some(json!({"appId": "shop"})), 200).await? == json!({"appId": "shop"}));
    f.err(Method::POST, "/api/v1/apps", Some(json!({})), 400, "WF_BAD_REQUEST").await?;
    f.ok(
        Method::POST,
        &format!("{APP}/handlers"),
        Some(json!({"podId": "p1", "deploymentVersion": "v1", "endpoints": receiver.endpoints("v1")})),
        201,
    )
    .await?;
    f.err(Method::POST, &format!("{APP}/handlers"), Some(json!({"podId": "p1"})), 400, "WF_BAD_REQUEST").await?;

    // CBOR over HTTP: the message bytes reach the handler unchanged.
    let message: Vec<u8> =
        vec![0xa2, 0x61, b'a', 0xd8, 0x40, 0x42, 0x01, 0x02, 0x61, b'b', 0xfb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18];
    let env = pgworld_it::cbor_envelope("q", &message, Some("v1"));
    let res = f.http.post(format!("{}{APP}/queue", f.base)).header("content-type", "application/cbor").body(env).send().await?;
    ensure!(res.status().as_u16() == 201, "{}", res.text().await?);
    let got = receiver.wait_for(1, Duration::from_secs(20)).await?;
    let entries = pgworld_core::cbor::map_entries(&got[0].body).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(got[0].body[entries[0].1.clone()] == message[..], "CBOR message spliced byte-exact");
    let bad =
        f.http.post(format!("{}{APP}/queue", f.base)).header("content-type", "application/cbor").body(vec![0xff]).send().await?;
    ensure!(bad.status().as_u16() == 400);

    let queued = f
        .ok(
            Method::POST,
            &format!("{APP}/queue"),
            Some(json!({"queueName": "q", "message": {"x": 1}, "idempotencyKey": "k", "deploymentId": "v9"})),
            201,
        )
        .await?;
    ensure!(queued["messageId"].as_str().is_some_and(|m| m.starts_with("msg_")), "{queued}");
    f.err(
        Method::POST,
        &format!("{APP}/queue"),
        Some(json!({"queueName": "q", "message": 2, "idempotencyKey": "k"})),
        409,
        "WF_DUPLICATE_IDEMPOTENCY_KEY",
    )
    .await?;
    f.err(Method::POST, &format!("{APP}/queue"), Some(json!({"message": 2})), 400, "WF_BAD_REQUEST").await?;
    ensure!(f.ok(Method::DELETE, &format!("{APP}/handlers/p1"), None, 200).await? == json!({"deregistered": true}));
    ensure!(
        f.ok(Method::DELETE, &format!("{APP}/handlers/p1"), None, 200).await? == json!({"deregistered": false}),
        "no longer registered"
    );
    let long = "v".repeat(2049);
    let refused = f
        .err(
            Method::POST,
            "/api/v1/versions/notify",
            Some(json!({"applicationId": "default", "deploymentVersion": long, "status": "draining"})),
            400,
            "WF_BAD_REQUEST",
        )
        .await?;
    ensure!(refused["message"] == "deploymentVersion must be at most 2048 bytes", "{refused}");

    let key = f.ok(Method::GET, &format!("{APP}/encryption-key?runId=wrun_1"), None, 200).await?;
    ensure!(key["key"].as_str().map(str::len) == Some(44), "{key}");
    f.err(Method::GET, &format!("{APP}/encryption-key"), None, 400, "WF_BAD_REQUEST").await?;
    let dl = f.ok(Method::GET, &format!("{APP}/dead-letters?limit=5"), None, 200).await?;
    ensure!(dl["data"] == json!([]) && dl["hasMore"] == false, "{dl}");
    f.err(Method::POST, &format!("{APP}/dead-letters/msg_x/retry"), None, 400, "WF_BAD_REQUEST").await?;
    f.err(Method::POST, &format!("{APP}/dead-letters/msg_424242/retry"), None, 404, "WF_MESSAGE_NOT_FOUND").await?;

    let status = f.ok(Method::GET, &format!("{APP}/versions/v9/status"), None, 200).await?;
    ensure!(status["queuedMessages"] == 1 && status["drained"] == false, "{status}");
    f.ok(
        Method::POST,
        "/api/v1/versions/notify",
        Some(json!({"applicationId": "default", "deploymentVersion": "v9", "status": "draining"})),
        200,
    )
    .await?;
    f.err(
        Method::POST,
        "/api/v1/versions/notify",
        Some(json!({"applicationId": "ghost", "deploymentVersion": "v9", "status": "draining"})),
        404,
        "WF_APP_NOT_FOUND",
    )
    .await?;
    f.err(
        Method::POST,
        "/api/v1/versions/notify",
        Some(json!({"applicationId": "default", "deploymentVersion": "v9", "status": "gone"})),
        400,
        "WF_BAD_REQUEST",
    )
    .await?;
    let expired = f.ok(Method::POST, &format!("{APP}/versions/v9/expire"), None, 200).await?;
    ensure!(expired["deadLetteredMessages"] == 1, "{expired}");
    f.err(
        Method::POST,
        &format!("{APP}/queue"),
        Some(json!({"queueName": "q", "message": 3, "deploymentId": "v9"})),
        410,
        "WF_VERSION_EXPIRED",
    )
    .await?;
    let dl = f.ok(Method::GET, &format!("{APP}/dead-letters"), None, 200).await?;
    let id = dl["data"][0]["messageId"].as_str().context("a dead letter")?.to_owned();
    f.err(Method::POST, &format!("{APP}/dead-letters/{id}/retry"), None, 410, "WF_VERSION_EXPIRED").await?;

    ensure!(f.ok(Method::GET, &format!("{APP}/quotas"), None, 200).await?["isDefault"] == true);
    let q = f.ok(Method::PUT, &format!("{APP}/quotas"), Some(json!({"maxRuns": 7})), 200).await?;
    ensure!(q == json!({"maxRuns": 7, "maxEventsPerRun": 25000, "maxQueuePerMinute": 100000}), "{q}");
    f.err(Method::PUT, &format!("{APP}/quotas"), Some(json!({})), 400, "WF_BAD_REQUEST").await?;
    f.err(Method::PUT, &format!("{APP}/quotas"), Some(json!({"maxRuns": "many"})), 400, "WF_BAD_REQUEST").await?;
    f.ok(Method::POST, &format!("{APP}/k8s-binding"), Some(json!({"namespace": "ns", "serviceAccount": "sa"})), 201).await?;
    f.err(Method::POST, &format!("{APP}/k8s-binding"), Some(json!({"namespace": "ns"})), 400, "WF_BAD_REQUEST").await?;
    ensure!(
        f.ok(Method::DELETE, &format!("{APP}/k8s-binding"), Some(json!({"namespace": "ns", "serviceAccount": "sa"})), 200)
            .await?
            == json!({"deleted": true})
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_errors_never_become_500() -> Result<()> {
    let db = TestDb::new().await?;
    let f = Facade::start(&db, "facade-transport").await?;
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        f.http.post(format!("{}{path}", f.base)).header("content-type", ct).body(body).send()
    };
    let events = format!("{APP}/runs/wrun_x/events");
    for (ct, body, want) in [
        ("application/json", b"{not json".to_vec(), 400),
        ("application/json", b"[1,2".to_vec(), 400),
        ("text/plain", b"hello".to_vec(), 415),
        ("application/json; charset=utf-8", br#"{"eventType":"run_started"}"#.to_vec(), 404),
        (
            "application/json",
            br#"{"eventType":"run_created","eventData":{"deploymentId":"v\u0000","workflowName":"w"}}"#.to_vec(),
            400,
        ),
        ("application/json", br#"{"eventType":"wait_created","correlationId":5}"#.to_vec(), 400),
    ] {
        let res = post(&events, ct, body).await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        ensure!(status == want, "{ct}: {status} {text}");
    }
    // Bodies over the limit: 1 MiB on ordinary routes, 20 MiB on events.
    let big = vec![b' '; 1024 * 1024 + 10];
    let res = post(&format!("{APP}/handlers"), "application/json", big.clone()).await?;
    ensure!(res.status().as_u16() == 413, "{}", res.status());
    let res = post(&events, "application/json", big).await?;
    ensure!(res.status().as_u16() == 400, "a 1 MiB event body is within its 20 MiB limit: {}", res.status());
    let res = post(&events, "application/json", vec![b' '; 21 * 1024 * 1024]).await?;
    ensure!(res.status().as_u16() == 413);
    f.err(Method::GET, "/api/v1/nope", None, 404, "WF_ROUTE_NOT_FOUND").await?;
    f.err(Method::PATCH, &format!("{APP}/runs"), None, 404, "WF_ROUTE_NOT_FOUND").await?;
    f.err(Method::GET, &format!("{APP}/runs/%FF%FE"), None, 400, "WF_BAD_REQUEST").await?;
    f.ok(Method::GET, &format!("{APP}/runs/"), None, 200).await?;
    let status = f.ok(Method::GET, "/status", None, 200).await?;
    ensure!(status == json!({"status": "ok"}));
    f.ok(Method::GET, "/ready", None, 200).await?;
    let doc = f.ok(Method::GET, "/openapi.json", None, 200).await?;
    ensure!(doc["paths"]["/api/v1/apps/{appId}/runs/{runId}/events"]["post"].is_object(), "OpenAPI lists the routes");
    let metrics = f.http.get(format!("{}/metrics", f.base)).send().await?.text().await?;
    ensure!(
        metrics.contains(
            "pgworld_http_requests_total{route=\"/api/v1/apps/{appId}/runs/{runId}/events\",method=\"POST\",status=\"400\"}"
        ),
        "{metrics}"
    );
    ensure!(metrics.contains("pgworld_dispatch_inflight"), "{metrics}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_write_read_and_live_read_while_writing() -> Result<()> {
    let db = TestDb::new().await?;
    let f = Facade::start(&db, "facade-streams").await?;
    let put = |name: &str, headers: &[(&str, &str)], ct: &str, body: Vec<u8>| {
        let mut req = f.http.put(format!("{}{APP}/runs/wrun_s/streams/{name}", f.base)).header("content-type", ct).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    // A live reader starts before anything is written.
    let live_url = format!("{}{APP}/streams/live?stream=true", f.base);
    let reader = tokio::spawn(async move {
        let res = reqwest::get(live_url).await?;
        ensure!(res.headers().get("content-type").and_then(|v| v.to_str().ok()) == Some("application/octet-stream"));
        let mut got = Vec::new();
        let mut stream = res.bytes_stream();
        use futures_util::StreamExt;
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk?);
        }
        anyhow::Ok(got)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut expected = Vec::new();
    for i in 0..5 {
        let text = format!("chunk {i};");
        expected.extend_from_slice(text.as_bytes());
        ensure!(put("live", &[], "text/plain", text.into_bytes()).await?.status().as_u16() == 204);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(!reader.is_finished(), "the live read waits for the close");
    put("live", &[("x-stream-done", "true")], "application/json", b"{}".to_vec()).await?;
    let got = tokio::time::timeout(Duration::from_secs(10), reader).await???;
    ensure!(got == expected, "live read got {:?}", String::from_utf8_lossy(&got));

    // Single, multi and byte writes; snapshot reads with positive and negative start.
    ensure!(put("s", &[], "application/json", br#"{"data":"aGVsbG8="}"#.to_vec()).await?.status().as_u16() == 204);
    put("s", &[("x-stream-multi", "true")], "application/json", br#"[" ", {"data":"world","type":"string"}]"#.to_vec()).await?;
    put("s", &[], "application/octet-stream", vec![0xff, 0x00]).await?;
    let all = f.http.get(format!("{}{APP}/streams/s", f.base)).send().await?.bytes().await?;
    ensure!(all[..] == b"hello world\xff\x00"[..], "{all:?}");
    let tail = f.http.get(format!("{}{APP}/streams/s?startIndex=-2", f.base)).send().await?.bytes().await?;
    ensure!(tail[..] == b"world\xff\x00"[..], "{tail:?}");
    let res = put("s", &[], "application/json", br#"{"nope":1}"#.to_vec()).await?;
    ensure!(res.status().as_u16() == 400);
    // A snapshot read spanning many fetches (small chunks grouped into frames, large ones alone)
    // returns every byte in order.
    let mut long = Vec::new();
    for i in 0..300u32 {
        let chunk: Vec<u8> = if i % 50 == 7 { vec![(i % 251) as u8; 200 * 1024] } else { format!("<{i}>").into_bytes() };
        long.extend_from_slice(&chunk);
        let res = f
            .http
            .put(format!("{}{APP}/runs/wrun_long/streams/long", f.base))
            .header("content-type", "application/octet-stream")
            .body(chunk)
            .send()
            .await?;
        ensure!(res.status().as_u16() == 204);
    }
    let read = f.http.get(format!("{}{APP}/streams/long", f.base)).send().await?.bytes().await?;
    ensure!(read.len() == long.len() && read[..] == long[..], "read {} of {} bytes", read.len(), long.len());
    let res = put("s", &[("x-stream-multi", "true")], "application/json", br#"{"data":"x"}"#.to_vec()).await?;
    ensure!(res.status().as_u16() == 400);
    put("s", &[("x-stream-done", "true")], "application/json", b"{}".to_vec()).await?;
    f.err(Method::PUT, &format!("{APP}/runs/wrun_s/streams/s"), Some(json!("late")), 409, "WF_STREAM_CLOSED").await?;
    ensure!(f.ok(Method::GET, &format!("{APP}/runs/wrun_s/streams"), None, 200).await? == json!(["live", "s"]));
    ensure!(
        f.ok(Method::GET, &format!("{APP}/runs/wrun_s/streams/s/info"), None, 200).await?
            == json!({"tailIndex": 3, "done": true})
    );
    ensure!(
        f.ok(Method::GET, &format!("{APP}/runs/x/streams/unknown/info"), None, 200).await?
            == json!({"tailIndex": -1, "done": false})
    );
    let page = f.ok(Method::GET, &format!("{APP}/runs/wrun_s/streams/s/chunks?limit=2"), None, 200).await?;
    ensure!(
        page == json!({"data": [{"index": 0, "data": "aGVsbG8="}, {"index": 1, "data": "IA=="}], "cursor": "1", "hasMore": true, "done": true}),
        "{page}"
    );
    f.err(Method::GET, &format!("{APP}/runs/wrun_s/streams/s/chunks?cursor=x"), None, 400, "WF_BAD_REQUEST").await?;
    f.err(Method::GET, &format!("{APP}/streams/s?startIndex=abc"), None, 400, "WF_BAD_REQUEST").await?;
    Ok(())
}

/// A request's head and its body as they go on the wire.
type RawRequest = (String, Vec<u8>);

/// One HTTP/1.1 exchange on a raw keep-alive connection, sent the way a slow client sends it: the
/// head and the first 64 KiB of the body, then the rest once the response has begun (or after a
/// moment, for routes that answer only after the whole body). A server that answers early thus
/// always sees a body that is not all there yet: the case where it cannot keep the connection.
async fn exchange(stream: &mut tokio::net::TcpStream, head: String, body: Vec<u8>) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut reader, mut writer) = stream.split();
    let (answered, mut answer_begun) = tokio::sync::oneshot::channel::<()>();
    let first = body.len().min(64 * 1024);
    let write = async {
        // A server that closes after an early answer may reset the rest of the body.
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body[..first]).await;
        if first < body.len() {
            tokio::select! {
                _ = &mut answer_begun => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let _ = writer.write_all(&body[first..]).await;
        }
    };
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = reader.read(&mut chunk).await?;
            ensure!(n > 0, "connection closed before the response head: {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        };
        let _ = answered.send(());
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let status: u16 = head.get(9..12).context("status line")?.parse()?;
        let length: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length:")).map(|v| v.trim().parse()).transpose()?.unwrap_or(0);
        while buf.len() < end + length {
            let n = reader.read(&mut chunk).await?;
            ensure!(n > 0, "connection closed inside the response body");
            buf.extend_from_slice(&chunk[..n]);
        }
        anyhow::Ok((status, head))
    };
    let ((), answer) = tokio::join!(write, read);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_clients_can_always_send_their_next_request() -> Result<()> {
    let db = TestDb::new().await?;
    let f = Facade::start(&db, "facade-keepalive").await?;
    let addr = f.base.trim_start_matches("http://").to_owned();
    let request = |method: &str, path: &str, ct: &str, body: &[u8], chunked: bool| {
        let framing = if chunked { "transfer-encoding: chunked".to_owned() } else { format!("content-length: {}", body.len()) };
        let head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {ct}\r\n{framing}\r\n\r\n");
        let body = if chunked {
            let mut out = Vec::new();
            for part in body.chunks(64 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        } else {
            body.to_vec()
        };
        (head, body)
    };
    let big = vec![b' '; 1024 * 1024 + 10];
    let events = format!("{APP}/runs/wrun_x/events");
    let huge = vec![b' '; 21 * 1024 * 1024];
    // Over what the façade will read and discard: it must say Connection: close.
    let enormous = vec![b' '; 40 * 1024 * 1024];
    let cases: [(&str, RawRequest, u16); 7] = [
        ("413, 21 MiB event (read and discarded)", request("POST", &events, "application/json", &huge, false), 413),
        (
            "413, 40 MiB on a 1 MiB route (connection closed)",
            request("POST", &format!("{APP}/handlers"), "application/json", &enormous, false),
            413,
        ),
        (
            "413, declared length over the limit",
            request("POST", &format!("{APP}/handlers"), "application/json", &big, false),
            413,
        ),
        ("413, chunked body over the limit", request("POST", &format!("{APP}/handlers"), "application/json", &big, true), 413),
        ("415", request("POST", &events, "text/plain", b"hello", false), 415),
        ("400", request("POST", &events, "application/json", b"{not json", false), 400),
        ("404 with an unread body", request("POST", "/api/v1/nope", "application/json", b"{\"a\": 1}", false), 404),
    ];
    let next = format!("GET /status HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    for (name, (head, body), want) in cases {
        let mut conn = tokio::net::TcpStream::connect(&addr).await?;
        let (status, response_head) = exchange(&mut conn, head, body).await.with_context(|| name.to_owned())?;
        ensure!(status == want, "{name}: {status}");
        let closes = response_head.contains("\r\nconnection: close");
        ensure!(closes == name.contains("closed"), "{name}: {response_head}");
        if closes {
            // Told to close: the server must really close, and a new connection works.
            use tokio::io::AsyncReadExt;
            let mut rest = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest)).await;
            ensure!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{name}: the server said close but kept the connection");
            conn = tokio::net::TcpStream::connect(&addr).await?;
        }
        let (status, _) = exchange(&mut conn, next.clone(), Vec::new()).await.with_context(|| format!("{name}: next request"))?;
        ensure!(status == 200, "{name}: next request answered {status}");
    }
    Ok(())
}
