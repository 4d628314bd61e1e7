//! Every `workflow.*` function, as listed by the catalog, called with NULLs, wrong JSON shapes and
//! huge or odd values: bad input must come back as a typed error (a `WF` SQLSTATE, or PostgreSQL's
//! own input errors), never as an internal error (`XX***`), a catalog error (`42***`, a bug in a
//! statement) or a lost connection. Deterministic: the same seed gives the same calls.

use anyhow::{bail, Result};
use pgworld_it::TestDb;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::BTreeMap;

fn big_text(n: usize) -> String {
    "x".repeat(n)
}

fn deep_json(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// Values to try for an argument of this SQL type, as text literals (None is NULL).
fn pool(sql_type: &str) -> Vec<Option<String>> {
    let s = |v: &str| Some(v.to_owned());
    let mut out = vec![None];
    match sql_type {
        "text" => out.extend([
            s(""),
            s("null"),
            s("default"),
            s("wrun_00000000000000000000000000"),
            s("msg_1"),
            s("msg_-1"),
            s("msg_99999999999999999999999"),
            s("evnt_zzzzzzzzzzzzzzzzzzzzzzzzzz"),
            s("../../etc/passwd"),
            s("%FF%FE"),
            s("ünïcødé 🦀"),
            s("a:b:c"),
            Some(big_text(100_000)),
        ]),
        "jsonb" => out.extend([
            s("{}"),
            s("[]"),
            s("null"),
            s("1"),
            s("\"s\""),
            s("true"),
            s(r#"{"a": null}"#),
            s(r#"{"eventType": null}"#),
            s(r#"{"eventType": 5}"#),
            s(r#"{"eventType": "run_created", "eventData": []}"#),
            s(r#"{"eventType": "run_created", "eventData": {"deploymentId": 5, "workflowName": {}}}"#),
            s(r#"{"eventType": "run_created", "eventData": {"deploymentId": "v1", "workflowName": "w", "input": {"__type": "Uint8Array", "data": "!!"}}}"#),
            s(r#"{"eventType": "step_created", "correlationId": "s", "eventData": {"stepName": null}}"#),
            s(r#"{"eventType": "hook_created", "correlationId": "h", "eventData": {"token": ""}}"#),
            s(r#"{"eventType": "wait_created", "correlationId": "w", "eventData": {"resumeAt": 1e400}}"#),
            s(r#"{"limit": "-1", "cursor": "!!", "sortOrder": "sideways"}"#),
            s(r#"{"limit": "99999999999999999999999", "cursor": "eyJ4IjoxfQ=="}"#),
            s(r#"{"resolveData": [], "$payload": "envelope", "eventCount": "1e400"}"#),
            s(r#"{"queueName": "__wkf_workflow_x", "message": null, "deploymentId": ""}"#),
            s(r#"{"queueName": "__wkf_step_x", "message": {"runId": 5}, "delaySeconds": -1e308}"#),
            s(r#"{"podId": "p", "deploymentVersion": "v", "endpoints": {"workflow": "ftp://x", "step": 1}}"#),
            s(r#"{"applicationId": "default", "deploymentVersion": "v", "status": "sleepy"}"#),
            s(r#"{"maxRuns": -1, "maxEventsPerRun": 1e400, "maxQueuePerMinute": "x", "runRetentionDays": 0.5}"#),
            s(r#"{"appId": "", "namespace": null, "serviceAccount": []}"#),
            Some(format!(r#"{{"applicationId": "default", "deploymentVersion": "{}", "status": "draining"}}"#, big_text(2048))),
            s(r#"{"eventType": "run_created", "eventData": {"deploymentId": "v\u0000", "workflowName": "w"}}"#),
            Some(deep_json(200)),
            Some(format!(r#"{{"eventType": "attr_set", "eventData": {{"{}": 1}}}}"#, big_text(10_000))),
        ]),
        "integer" | "smallint" => out.extend([s("0"), s("-1"), s("2147483647"), s("-2147483648")]),
        "bigint" => out.extend([s("0"), s("-1"), s("9223372036854775807"), s("-9223372036854775808")]),
        "double precision" | "real" | "numeric" => {
            out.extend([s("NaN"), s("Infinity"), s("-Infinity"), s("0"), s("-1"), s("1e308")])
        }
        "uuid" => out.extend([s("00000000-0000-0000-0000-000000000000"), s("6f1c2a3e-0000-4000-8000-000000000001")]),
        "uuid[]" => out.extend([s("{}"), s("{NULL}"), s("{NULL,00000000-0000-0000-0000-000000000000}")]),
        "text[]" => out.extend([s("{}"), s("{NULL}"), s("{\"\",x}")]),
        "bytea" => out.extend([
            s("\\x"),
            s("\\x00"),
            s("\\xa1a2"),
            s("\\xa36971756575654e616d6567"),
            s("\\xbf6971756575654e616d65f6ff"),
            Some(format!("\\x{}", "ff".repeat(5000))),
        ]),
        "boolean" => out.extend([s("true"), s("false")]),
        _ => {}
    }
    out
}

struct Function {
    name: String,
    arg_types: Vec<String>,
}

async fn functions(c: &tokio_postgres::Client) -> Result<Vec<Function>> {
    let rows = c
        .query(
            "SELECT p.proname::text, ARRAY(SELECT pg_catalog.format_type(t, NULL) FROM unnest(p.proargtypes) AS t)::text[] \
               FROM pg_proc p WHERE p.pronamespace = 'workflow'::regnamespace AND p.prokind = 'f' \
                AND p.prorettype <> 'trigger'::regtype ORDER BY 1, 2",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| Function { name: r.get(0), arg_types: r.get(1) }).collect())
}

/// Argument tuples for one function: all NULL, each argument through its pool (the others at a
/// plausible value), then random mixes.
fn cases(f: &Function, rng: &mut StdRng) -> Vec<Vec<Option<String>>> {
    let pools: Vec<Vec<Option<String>>> = f.arg_types.iter().map(|t| pool(t)).collect();
    if pools.is_empty() {
        return vec![Vec::new()];
    }
    let plausible: Vec<Option<String>> = pools.iter().map(|p| p.get(1).cloned().flatten()).collect();
    let mut out = vec![vec![None; pools.len()]];
    for (i, p) in pools.iter().enumerate() {
        for v in p {
            let mut args = plausible.clone();
            args[i] = v.clone();
            out.push(args);
        }
    }
    for _ in 0..12 {
        out.push(pools.iter().map(|p| p[rng.random_range(0..p.len())].clone()).collect());
    }
    out
}

fn refused(sqlstate: &str) -> bool {
    sqlstate.starts_with("XX") || sqlstate.starts_with("42")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_function_fails_internally_on_bad_input() -> Result<()> {
    let db = TestDb::new().await?;
    let catalog = db.superuser().await?;
    let mut rng = StdRng::seed_from_u64(0x9e3779b97f4a7c15);
    let mut calls = 0usize;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut c = db.superuser().await?;
    for f in functions(&catalog).await? {
        let casts: Vec<String> = f.arg_types.iter().enumerate().map(|(i, t)| format!("($1::text[])[{}]::{t}", i + 1)).collect();
        let sql = format!("SELECT workflow.{}({})::text", quote(&f.name), casts.join(", "));
        for args in cases(&f, &mut rng) {
            calls += 1;
            c.batch_execute("BEGIN; SET LOCAL workflow.app_id = 'default'; SET LOCAL workflow.admin = on").await?;
            let result = if args.is_empty() { c.query(&sql, &[]).await } else { c.query(&sql, &[&args]).await };
            let code = match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => match e.as_db_error() {
                    Some(d) => d.code().code().to_owned(),
                    None => "connection".to_owned(),
                },
            };
            if refused(&code) || code == "connection" {
                let message = result.err().map(|e| e.as_db_error().map_or(e.to_string(), |d| d.message().to_owned()));
                let shown: Vec<String> =
                    args.iter().map(|a| a.as_deref().map_or("NULL".to_owned(), |v| v.chars().take(60).collect())).collect();
                failures.push(format!("{}({}) -> {code}: {}", f.name, shown.join(", "), message.unwrap_or_default()));
            }
            *outcomes.entry(code.clone()).or_default() += 1;
            if code == "connection" || c.is_closed() {
                c = db.superuser().await?;
            } else {
                c.batch_execute("ROLLBACK").await?;
            }
        }
    }
    if !failures.is_empty() {
        bail!("{} of {calls} calls failed internally:\n{}", failures.len(), failures.join("\n"));
    }
    println!("{calls} calls over the catalog; outcomes by SQLSTATE: {outcomes:?}");
    if calls < 1000 || outcomes.get("ok").copied().unwrap_or(0) == 0 {
        bail!("the fuzz reached the functions ({calls} calls: {outcomes:?})");
    }
    Ok(())
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[test]
fn every_type_in_the_api_has_values_to_try() {
    for t in ["text", "jsonb", "integer", "bigint", "double precision", "uuid", "uuid[]", "bytea", "boolean"] {
        assert!(pool(t).len() >= 3, "{t}");
    }
}
