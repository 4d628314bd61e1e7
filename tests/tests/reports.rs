//! Bump-and-report past its 500-event bound, and list pagination over a long log.

use anyhow::{anyhow, ensure, Result};
use pgworld_it::{call, create_run, event_create, TestDb};
use serde_json::{json, Value};

#[tokio::test]
async fn a_far_behind_writer_gets_a_paginated_report() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    create_run(&c, "wrun_long").await?;
    c.batch_execute(
        "DO $$ BEGIN FOR i IN 1..600 LOOP
           PERFORM workflow.event_create('wrun_long', '{}', jsonb_build_object('eventType', 'wait_created',
             'correlationId', 'w' || i, 'eventData', jsonb_build_object('resumeAt', 0)));
         END LOOP; END $$",
    )
    .await?;
    let out =
        event_create(&c, "wrun_long", json!({"eventCount": "0"}), json!({"eventType": "wait_completed", "correlationId": "w1"}))
            .await?
            .map_err(|e| anyhow!("{e:?}"))?;
    ensure!(out["event"]["eventId"] == json!("evnt_00000000000000000000000602"));
    let events = out["events"].as_array().cloned().unwrap_or_default();
    ensure!(events.len() == 500, "{}", events.len());
    ensure!(events[0]["eventId"] == json!("evnt_00000000000000000000000001"));
    ensure!(out["cursor"] == json!("evnt_00000000000000000000000500") && out["hasMore"] == json!(true));

    // The client pages on with events_list from that cursor and sees the rest of the gap.
    let rest = call(&c, "SELECT workflow.events_list('wrun_long', $1)", &[&json!({"cursor": out["cursor"], "limit": "1000"})])
        .await?
        .map_err(|e| anyhow!("{e:?}"))?;
    let ids: Vec<&Value> = rest["data"].as_array().into_iter().flatten().map(|e| &e["eventId"]).collect();
    ensure!(ids.len() == 102 && ids[0] == &json!("evnt_00000000000000000000000501"), "{}", ids.len());
    ensure!(rest["hasMore"] == json!(false));

    // An overstated eventCount reports nothing.
    let ahead = event_create(
        &c,
        "wrun_long",
        json!({"eventCount": "9999"}),
        json!({"eventType": "wait_completed", "correlationId": "w2"}),
    )
    .await?
    .map_err(|e| anyhow!("{e:?}"))?;
    ensure!(ahead.get("events").is_none());
    Ok(())
}

#[tokio::test]
async fn runs_list_pages_without_skipping_same_millisecond_runs() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.session("default").await?;
    // One transaction: many runs share a millisecond, so the cursor must carry the run id.
    c.batch_execute("BEGIN").await?;
    for i in 0..30 {
        create_run(&c, &format!("wrun_{i:02}")).await?;
    }
    c.batch_execute("COMMIT").await?;
    for order in ["desc", "asc"] {
        let mut seen = Vec::new();
        let mut cursor = Value::Null;
        loop {
            let q = json!({"limit": "7", "sortOrder": order, "cursor": cursor, "resolveData": "none"});
            let page = call(&c, "SELECT workflow.runs_list($1)", &[&q]).await?.map_err(|e| anyhow!("{e:?}"))?;
            for r in page["data"].as_array().into_iter().flatten() {
                seen.push(r["runId"].as_str().unwrap_or_default().to_owned());
            }
            if page["hasMore"] != json!(true) {
                ensure!(page["cursor"].is_null());
                break;
            }
            cursor = page["cursor"].clone();
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        ensure!(sorted.len() == 30 && seen.len() == 30, "{order}: {} runs, {} unique", seen.len(), sorted.len());
    }
    Ok(())
}
