//! Workflows from SQL without pods (the end-to-end tier runs them on a real WDK app): what
//! `workflow.start` leaves after commit and after rollback, where it goes, who may call it, and
//! `run_output` and `hook_resume` answers.

use anyhow::{anyhow, ensure, Result};
use base64::{engine::general_purpose::STANDARD, Engine};
use pgworld_it::{call, event_create, register, TestDb};
use serde_json::{json, Value};

const WORKFLOW: &str = "workflow//./workflows/orders//fulfil";

fn endpoints() -> Value {
    json!({"workflow": "http://pod:3000/flow", "step": "http://pod:3000/step", "webhook": "http://pod:3000/hook"})
}

#[tokio::test]
async fn a_start_commits_a_run_and_its_message_or_nothing() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    let e = call(&c, "SELECT workflow.start($1, '[1]')", &[&WORKFLOW]).await?.err().ok_or_else(|| anyhow!("no pods"))?;
    ensure!(e.sqlstate == "WF400" && e.message.contains("options.deploymentId"), "{e:?}");

    c.batch_execute("BEGIN").await?;
    let rolled = call(&c, "SELECT workflow.start($1, '[1]', '{\"deploymentId\": \"v9\"}')", &[&WORKFLOW])
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    c.batch_execute("ROLLBACK").await?;
    let su = db.superuser().await?;
    let count = |sql: &'static str| {
        let su = &su;
        async move { anyhow::Ok(su.query_one(sql, &[]).await?.get::<_, i64>(0)) }
    };
    ensure!(
        count("SELECT count(*) FROM workflow.runs").await? == 0 && count("SELECT count(*) FROM workflow.messages").await? == 0
    );
    let e =
        call(&c, "SELECT workflow.run_output($1)", &[&rolled["runId"].as_str()]).await?.err().ok_or_else(|| anyhow!("gone"))?;
    ensure!(e.sqlstate == "WF404", "{e:?}");

    // Pods of v1 and then v2 register; v2 (the newest) is the default, v1 when named.
    register(&c, "pod-1", "v1", endpoints()).await?;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    register(&c, "pod-2", "v2", endpoints()).await?;
    let started =
        call(&c, "SELECT workflow.start($1, '[{\"sku\": \"A-1\"}, 2]')", &[&WORKFLOW]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(started["deploymentId"] == "v2" && started["specVersion"] == 3, "{started}");
    ensure!(started["encrypted"] == false, "no SDK version known: plain values, which every WDK reads");
    let run_id = started["runId"].as_str().unwrap_or_default().to_owned();
    let row = su
        .query_one(
            "SELECT r.status, r.deployment_id, r.workflow_name, r.spec_version, e.event_type, m.queue_name, m.kind, m.deployment_version, \
                    b.encoding, encode(b.body_cbor, 'hex') \
             FROM workflow.runs r JOIN workflow.events e USING (application_id, run_id) \
             JOIN workflow.messages m USING (application_id, run_id) JOIN workflow.message_bodies b ON b.id = m.id \
             WHERE r.run_id = $1",
            &[&run_id],
        )
        .await?;
    let got: (String, String, String, i32, String, String, String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5), row.get(6), row.get(7), row.get(8), row.get(9));
    ensure!(got.0 == "pending" && got.1 == "v2" && got.2 == WORKFLOW && got.3 == 3 && got.4 == "run_created", "{got:?}");
    ensure!(got.5 == format!("__wkf_workflow_{WORKFLOW}") && got.6 == "workflow" && got.7 == "v2" && got.8 == "cbor", "{got:?}");
    ensure!(
        got.9.contains(&hex(&run_id)) && got.9.contains(&hex("runInput")),
        "the CBOR message names the run and carries its input"
    );
    let e = call(&c, "SELECT workflow.run_output($1)", &[&run_id]).await?.err().ok_or_else(|| anyhow!("not finished"))?;
    ensure!(e.sqlstate == "WF425", "{e:?}");
    let named = call(&c, "SELECT workflow.start($1, '[]', '{\"deploymentId\": \"v1\", \"specVersion\": 2}')", &[&WORKFLOW])
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    ensure!(named["deploymentId"] == "v1" && named["specVersion"] == 2, "{named}");
    let encoding: String = su
        .query_one(
            "SELECT b.encoding FROM workflow.messages m JOIN workflow.message_bodies b USING (id) WHERE m.run_id = $1",
            &[&named["runId"].as_str()],
        )
        .await?
        .get(0);
    ensure!(encoding == "json", "before spec version 3 the message is JSON");
    Ok(())
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn outputs_read_back_as_json_and_unknown_things_are_typed_errors() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    // WDK bytes (plain devalue here) decode; a JSON output from another client reads as it is.
    let devl = |text: &str| json!({"__type": "Uint8Array", "data": STANDARD.encode(format!("devl{text}"))});
    for (run, output) in
        [("wrun_wdk", devl(r#"[{"total":1,"at":2},12,["Date","2026-12-01T00:00:00.000Z"]]"#)), ("wrun_plain", json!([1, 2]))]
    {
        for body in [
            json!({"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "wf", "input": devl("[[]]")}}),
            json!({"eventType": "run_started"}),
            json!({"eventType": "run_completed", "eventData": {"output": output}}),
        ] {
            event_create(&c, run, json!({"$payload": "envelope"}), body).await?.map_err(|e| anyhow!("{e:?}"))?;
        }
    }
    let out = call(&c, "SELECT workflow.run_output('wrun_wdk')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(
        out == json!({"runId": "wrun_wdk", "status": "completed", "output": {"total": 12, "at": "2026-12-01T00:00:00.000Z"}}),
        "{out}"
    );
    let out = call(&c, "SELECT workflow.run_output('wrun_plain')", &[]).await?.map_err(|e| anyhow!("{e:?}"))?;
    ensure!(out["output"] == json!([1, 2]), "{out}");
    let e =
        call(&c, "SELECT workflow.hook_resume('nobody-holds-this', '{}')", &[]).await?.err().ok_or_else(|| anyhow!("unknown"))?;
    ensure!(e.sqlstate == "WF404", "{e:?}");
    for sql in ["SELECT workflow.start(NULL)", "SELECT workflow.start($1, NULL)", "SELECT workflow.start($1, '\"x\"')"] {
        let e = if sql.contains("$1") { call(&c, sql, &[&WORKFLOW]).await? } else { call(&c, sql, &[]).await? };
        ensure!(e.err().is_some_and(|e| e.sqlstate == "WF400"), "{sql}");
    }
    // A role bound to no app is refused, as for every function.
    let su = db.superuser().await?;
    let stranger = format!("stranger_{}", db.name);
    su.batch_execute(&format!("CREATE ROLE {stranger} LOGIN IN ROLE pgworld_client")).await?;
    let s = db.session_as(&stranger).await?;
    let e = call(&s, "SELECT workflow.start($1, '[]', '{\"deploymentId\": \"v1\"}')", &[&WORKFLOW])
        .await?
        .err()
        .ok_or_else(|| anyhow!("unbound"))?;
    ensure!(e.sqlstate == "WF401", "{e:?}");
    Ok(())
}
