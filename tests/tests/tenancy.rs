//! Tenant isolation (spec/tenancy.md §5): role mapping, the app setting, row-level security.

use anyhow::{anyhow, ensure, Result};
use pgworld_it::{call, create_run, event_create, TestDb};
use serde_json::json;

/// Login roles are cluster-wide; every test names its own.
fn role(prefix: &str, db: &TestDb) -> String {
    format!("{prefix}_{}", db.name)
}

async fn client_role(db: &TestDb, name: &str, app: &str) -> Result<()> {
    let su = db.superuser().await?;
    su.batch_execute(&format!("CREATE ROLE {name} LOGIN IN ROLE pgworld_client")).await?;
    let out = call(&su, "SELECT workflow.app_role_grant($1, $2)", &[&app, &name]).await?;
    out.map_err(|e| anyhow!("grant failed: {e:?}"))?;
    Ok(())
}

#[tokio::test]
async fn app_roles_see_only_their_own_app() -> Result<()> {
    let db = TestDb::new().await?;
    db.provision("b").await?;
    let (ra, rb) = (role("ra", &db), role("rb", &db));
    client_role(&db, &ra, "default").await?;
    client_role(&db, &rb, "b").await?;

    let a = db.session_as(&ra).await?;
    let b = db.session_as(&rb).await?;
    create_run(&a, "wrun_of_a").await?;
    create_run(&b, "wrun_of_b").await?;

    let list_a = call(&a, "SELECT workflow.runs_list('{}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    let ids: Vec<&str> = list_a["data"].as_array().into_iter().flatten().filter_map(|r| r["runId"].as_str()).collect();
    ensure!(ids == ["wrun_of_a"], "{ids:?}");
    let hidden =
        call(&b, "SELECT workflow.run_get('wrun_of_a')", &[]).await?.err().ok_or_else(|| anyhow!("B must not read A's run"))?;
    ensure!(hidden.sqlstate == "WF404", "{hidden:?}");
    let write = event_create(&b, "wrun_of_a", json!({}), json!({"eventType": "run_cancelled"})).await?;
    ensure!(write.err().map(|e| e.sqlstate) == Some("WF404".into()), "B must not write A's run");
    // The same run id may exist in both apps.
    create_run(&b, "wrun_of_a").await?;

    // No table privileges at all: everything goes through the functions.
    let direct = a.query("SELECT * FROM workflow.runs", &[]).await;
    ensure!(direct.err().and_then(|e| e.code().map(|c| c.code().to_owned())) == Some("42501".into()));

    // Asking for another app than the mapped one is refused.
    a.batch_execute("SET workflow.app_id = 'b'").await?;
    let mismatch = call(&a, "SELECT workflow.runs_list('{}')", &[]).await?.err().ok_or_else(|| anyhow!("mismatch must fail"))?;
    ensure!((mismatch.sqlstate.as_str(), mismatch.message.as_str()) == ("WF403", "Forbidden: app ID mismatch"), "{mismatch:?}");
    a.batch_execute("SET workflow.app_id = 'default'").await?;
    ensure!(call(&a, "SELECT workflow.runs_list('{}')", &[]).await?.is_ok(), "matching label is fine");

    // Admin functions are not for client roles.
    let admin = call(&a, "SELECT workflow.app_provision('{\"appId\":\"c\"}')", &[]).await?;
    ensure!(admin.is_err(), "client roles cannot provision apps");
    Ok(())
}

#[tokio::test]
async fn row_level_security_itself_hides_other_apps_rows() -> Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    db.provision("b").await?;
    let ra = role("rls", &db);
    client_role(&db, &ra, "default").await?;
    let sa = db.session("default").await?;
    let sb = db.session("b").await?;
    create_run(&sa, "wrun_1").await?;
    create_run(&sb, "wrun_2").await?;
    create_run(&sb, "wrun_3").await?;
    // Grant raw SELECT so that only the policy stands between the role and app B's rows.
    su.batch_execute(&format!("GRANT SELECT ON workflow.runs, workflow.events TO {ra}")).await?;
    let a = db.session_as(&ra).await?;
    let runs: i64 = a.query_one("SELECT count(*) FROM workflow.runs", &[]).await?.get(0);
    let events: i64 = a.query_one("SELECT count(*) FROM workflow.events", &[]).await?.get(0);
    ensure!((runs, events) == (1, 1), "role of app A sees {runs} runs, {events} events");
    let total: i64 = su.query_one("SELECT count(*) FROM workflow.runs", &[]).await?.get(0);
    ensure!(total == 3);
    Ok(())
}

#[tokio::test]
async fn unmapped_roles_and_unset_apps_are_unauthorized() -> Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    let stranger = role("stranger", &db);
    su.batch_execute(&format!("CREATE ROLE {stranger} LOGIN IN ROLE pgworld_client")).await?;
    let s = db.session_as(&stranger).await?;
    let e = call(&s, "SELECT workflow.runs_list('{}')", &[]).await?.err().ok_or_else(|| anyhow!("must fail"))?;
    ensure!(e.sqlstate == "WF401" && e.message == format!("role {stranger} is not mapped to an application"), "{e:?}");

    let service = role("svc", &db);
    su.batch_execute(&format!("CREATE ROLE {service} LOGIN IN ROLE pgworld_service")).await?;
    let svc = db.session_as(&service).await?;
    let e = call(&svc, "SELECT workflow.runs_list('{}')", &[]).await?.err().ok_or_else(|| anyhow!("must fail"))?;
    ensure!(e.sqlstate == "WF401", "{e:?}");
    svc.batch_execute("SET workflow.app_id = 'ghost'").await?;
    let e = call(&svc, "SELECT workflow.runs_list('{}')", &[]).await?.err().ok_or_else(|| anyhow!("must fail"))?;
    ensure!((e.sqlstate.as_str(), e.message.as_str()) == ("WF404", "Application ghost not found"), "{e:?}");
    // A service role may act for any app, but admin functions need workflow.admin.
    svc.batch_execute("SET workflow.app_id = 'default'").await?;
    ensure!(call(&svc, "SELECT workflow.runs_list('{}')", &[]).await?.is_ok());
    let e =
        call(&svc, "SELECT workflow.app_provision('{\"appId\":\"x\"}')", &[]).await?.err().ok_or_else(|| anyhow!("must fail"))?;
    ensure!(e.sqlstate == "WF403", "{e:?}");
    svc.batch_execute("SET workflow.admin = on").await?;
    let created = call(&svc, "SELECT workflow.app_provision('{\"appId\":\"x\"}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(created == json!({"appId": "x", "created": true}));
    Ok(())
}

#[tokio::test]
async fn hook_tokens_are_unique_per_app_not_globally() -> Result<()> {
    let db = TestDb::new().await?;
    db.provision("b").await?;
    let a = db.session("default").await?;
    let b = db.session("b").await?;
    create_run(&a, "wrun_1").await?;
    create_run(&b, "wrun_1").await?;
    let hook = json!({"eventType": "hook_created", "correlationId": "h", "eventData": {"token": "shared"}});
    let ha = event_create(&a, "wrun_1", json!({}), hook.clone()).await?.map_err(|e| anyhow!("{e:?}"))?;
    let hb = event_create(&b, "wrun_1", json!({}), hook).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(ha["hook"]["token"] == json!("shared") && hb["hook"]["token"] == json!("shared"), "{ha} {hb}");
    let by_token = call(&b, "SELECT workflow.hook_get_by_token('shared')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(by_token["runId"] == json!("wrun_1"));
    Ok(())
}

/// An app provisioned inside a transaction (or savepoint) that rolls back leaves no cached id
/// behind: later writes for that label go to the app that really exists, or fail.
#[tokio::test]
async fn an_app_that_rolled_back_leaves_no_id_to_write_under() -> Result<()> {
    let db = TestDb::new().await?;
    let s1 = db.superuser().await?;
    s1.batch_execute("BEGIN").await?;
    call(&s1, "SELECT workflow.app_provision('{\"appId\":\"ghost\"}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    s1.batch_execute("SET LOCAL workflow.app_id = 'ghost'").await?;
    create_run(&s1, "wrun_ghost_1").await?;
    s1.batch_execute("ROLLBACK").await?;

    // Another session provisions the label for real: a new id.
    db.provision("ghost").await?;
    s1.execute("SELECT set_config('workflow.app_id', 'ghost', false)", &[]).await?;
    create_run(&s1, "wrun_ghost_2").await?;
    let real = db.session("ghost").await?;
    let run = call(&real, "SELECT workflow.run_get('wrun_ghost_2', '{}')", &[]).await?;
    ensure!(run.as_ref().is_ok_and(|r| r["runId"] == "wrun_ghost_2"), "the run belongs to the real app: {run:?}");

    // Rolled back to a savepoint, within the transaction that goes on and commits.
    // (The setting comes first: a savepoint's rollback would undo it too.)
    s1.batch_execute("BEGIN; SET LOCAL workflow.app_id = 'phantom'; SAVEPOINT before_app").await?;
    call(&s1, "SELECT workflow.app_provision('{\"appId\":\"phantom\"}')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    create_run(&s1, "wrun_phantom_1").await?;
    s1.batch_execute("ROLLBACK TO SAVEPOINT before_app").await?;
    let after = event_create(
        &s1,
        "wrun_phantom_2",
        json!({}),
        json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf"}}),
    )
    .await?;
    ensure!(after.as_ref().err().map(|e| e.sqlstate.as_str()) == Some("WF404"), "no app to write under: {after:?}");
    s1.batch_execute("COMMIT").await?;

    let su = db.superuser().await?;
    let orphans: i64 = su
        .query_one(
            "SELECT count(*) FROM workflow.runs r WHERE NOT EXISTS \
               (SELECT 1 FROM workflow.applications a WHERE a.application_id = r.application_id)",
            &[],
        )
        .await?
        .get(0);
    ensure!(orphans == 0, "{orphans} runs under applications that do not exist");
    Ok(())
}

/// A session that LISTENs and hands every notification over as (channel, payload).
async fn listener(url: &str) -> Result<(tokio_postgres::Client, tokio::sync::mpsc::UnboundedReceiver<(String, String)>)> {
    use futures::StreamExt;
    let (client, mut conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    client.batch_execute("LISTEN pgworld_stream; LISTEN pgworld_queue").await?;
    Ok((client, rx))
}

async fn next_ping(rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String)>, channel: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((c, payload))) if c == channel => return Ok(payload),
            Ok(Some(_)) => continue,
            _ => anyhow::bail!("no {channel} ping within 10 s"),
        }
    }
}

/// Any role may LISTEN: another app's role sees that pings happen, never which app or stream.
#[tokio::test]
async fn pings_name_no_app_and_no_stream() -> Result<()> {
    let db = TestDb::new().await?;
    db.provision("b").await?;
    let rb = role("ping_b", &db);
    client_role(&db, &rb, "b").await?;
    let (_listening, mut pings) = listener(&pgworld_it::with_user(&db.url, &rb)).await?;

    let a = db.session("default").await?;
    create_run(&a, "wrun_stream").await?;
    a.execute("SELECT workflow.stream_put('wrun_stream', 'customer-42-invoice-stream', '{}', '{\"data\":\"aGk=\"}')", &[])
        .await?;
    let payload = next_ping(&mut pings, "pgworld_stream").await?;
    ensure!(payload.len() == 32 && payload.bytes().all(|b| b.is_ascii_hexdigit()), "opaque: {payload:?}");
    // It is the channel the stream's own readers are told, and only theirs.
    let state =
        call(&a, "SELECT workflow.stream_state('customer-42-invoice-stream')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(state["channel"] == payload.as_str(), "{state} / {payload}");
    let b = db.session("b").await?;
    let other =
        call(&b, "SELECT workflow.stream_state('customer-42-invoice-stream')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(other["channel"] != payload.as_str(), "the same name in another app is another channel");

    pgworld_it::enqueue(&a, json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_stream"}, "deploymentId": "v1"}))
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    ensure!(next_ping(&mut pings, "pgworld_queue").await?.is_empty(), "queue pings carry nothing");
    Ok(())
}

/// No lock a client role can take gates another app's work: the advisory key enqueues once
/// used, and per-app advisory keys handler registration once used, are no longer consulted; the
/// row that gates pings is out of every client's reach.
#[tokio::test]
async fn a_client_role_holds_no_lock_that_gates_other_apps() -> Result<()> {
    let db = TestDb::new().await?;
    db.provision("b").await?;
    let ra = role("lock_a", &db);
    client_role(&db, &ra, "default").await?;
    let hostile = db.session_as(&ra).await?;
    let b_id: i32 =
        db.superuser().await?.query_one("SELECT application_id FROM workflow.applications WHERE label = 'b'", &[]).await?.get(0);
    hostile.batch_execute("SELECT pg_advisory_lock(-7244063581427349337)").await?;
    hostile.execute("SELECT pg_advisory_lock(hashtext('pgworld.handlers'), $1)", &[&b_id]).await?;
    hostile.execute("SELECT pg_advisory_lock(hashtext('pgworld.versions'), $1)", &[&b_id]).await?;
    let gate = hostile.batch_execute("SELECT * FROM workflow.notify_gate FOR UPDATE").await;
    ensure!(gate.err().and_then(|e| e.code().map(|c| c.code().to_owned())) == Some("42501".into()), "the gate is out of reach");

    let (_listening, mut pings) = listener(&db.url).await?;
    let b = db.session("b").await?;
    b.batch_execute("SET statement_timeout = '5s'").await?;
    create_run(&b, "wrun_b").await?;
    pgworld_it::enqueue(&b, json!({"queueName": "__wkf_workflow_wf", "message": {"runId": "wrun_b"}, "deploymentId": "v1"}))
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    next_ping(&mut pings, "pgworld_queue").await?;
    let endpoints =
        json!({"workflow": "http://127.0.0.1:9/f", "step": "http://127.0.0.1:9/s", "webhook": "http://127.0.0.1:9/w"});
    pgworld_it::register(&b, "pod-b", "v1", endpoints).await?;
    b.batch_execute("SET workflow.admin = on").await?;
    call(
        &b,
        "SELECT workflow.version_notify($1)",
        &[&json!({"applicationId": "b", "deploymentVersion": "v1", "status": "draining"})],
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// API tokens in SQL: minted by an admin (admin tokens by pgworld_admin alone), stored as a hash,
/// resolved only by the service, refused when revoked or altered; bad arguments are WF400.
#[tokio::test]
async fn api_tokens_resolve_to_their_app_until_revoked() -> Result<()> {
    let db = TestDb::new().await?;
    let su = db.superuser().await?;
    let made = call(&su, "SELECT workflow.app_token_create('default', '{\"label\": \"ci\"}')", &[])
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    let token = made["token"].as_str().unwrap_or_default().to_owned();
    let id = made["tokenId"].as_str().unwrap_or_default().to_owned();
    ensure!(token.starts_with("pgw_") && made["appId"] == "default" && made["label"] == "ci", "{made}");
    let stored: i64 = su
        .query_one(
            "SELECT count(*) FROM workflow.app_tokens WHERE position(convert_to($1, 'UTF8') IN secret_hash) > 0",
            &[&token],
        )
        .await?
        .get(0);
    ensure!(stored == 0, "only a hash is stored");
    for (sql, state) in [
        ("SELECT workflow.app_token_create(NULL)", "WF400"),
        ("SELECT workflow.app_token_create('ghost')", "WF404"),
        ("SELECT workflow.app_token_create('default', '{\"label\": 5}')", "WF400"),
        ("SELECT workflow.app_token_revoke('default', 'tok_x')", "WF400"),
        ("SELECT workflow.app_token_revoke('default', NULL)", "WF400"),
        ("SELECT workflow.app_tokens_list('ghost')", "WF404"),
    ] {
        let e = call(&su, sql, &[]).await?.err().ok_or_else(|| anyhow!("{sql} must fail"))?;
        ensure!(e.sqlstate == state, "{sql}: {e:?}");
    }

    let service = role("tok_svc", &db);
    su.batch_execute(&format!("CREATE ROLE {service} LOGIN IN ROLE pgworld_service")).await?;
    let svc = db.session_as(&service).await?;
    let identity = |t: String| {
        let svc = &svc;
        async move {
            anyhow::Ok(svc.query_one("SELECT workflow.token_identity($1)", &[&t]).await?.get::<_, Option<serde_json::Value>>(0))
        }
    };
    ensure!(identity(token.clone()).await? == Some(json!({"tokenId": id, "appId": "default", "admin": false})));
    let altered = format!("{}{}", &token[..token.len() - 1], if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [altered, "pgw_1_".to_owned(), String::new(), "x".repeat(10_000)] {
        ensure!(identity(bad).await?.is_none(), "a wrong token resolves to nothing");
    }
    // The service is no admin without workflow.admin, and never mints admin tokens.
    let e = call(&svc, "SELECT workflow.app_token_create('default')", &[]).await?.err().ok_or_else(|| anyhow!("must fail"))?;
    ensure!(e.sqlstate == "WF403", "{e:?}");
    svc.batch_execute("SET workflow.admin = on").await?;
    ensure!(svc.query_one("SELECT workflow.admin_token_create()", &[]).await.is_err(), "admin tokens: pgworld_admin only");

    // A client role can neither read the table nor resolve tokens.
    let client = role("tok_client", &db);
    client_role(&db, &client, "default").await?;
    let cl = db.session_as(&client).await?;
    ensure!(cl.query("SELECT * FROM workflow.app_tokens", &[]).await.is_err(), "no table access");
    ensure!(cl.query_one("SELECT workflow.token_identity($1)", &[&token]).await.is_err(), "no token lookups");

    let revoked = call(&su, "SELECT workflow.app_token_revoke(NULL, $1)", &[&id]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(revoked["revoked"] == true, "{revoked}");
    ensure!(identity(token.clone()).await?.is_none(), "a revoked token resolves to nothing");
    let listed = call(&su, "SELECT workflow.app_tokens_list()", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(listed["data"][0]["revokedAt"].is_string() && !listed.to_string().contains(&token[8..]), "{listed}");
    Ok(())
}
