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
