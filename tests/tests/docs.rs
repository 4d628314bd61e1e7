//! docs/sql-api.md against the installed catalog: every public function with its exact
//! signature and callers, every view, every `workflow.*` setting, and nothing that is not there.

use anyhow::{ensure, Result};
use pgworld_it::TestDb;
use std::collections::BTreeSet;

const DOC: &str = include_str!("../../docs/sql-api.md");

/// The first backticked cell and the third cell of each table row whose first cell is code.
fn documented() -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let (mut functions, mut views, mut settings) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for line in DOC.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let name = cells[0].trim_start_matches("| `").trim_end_matches('`').to_owned();
        if name.starts_with("workflow.") {
            settings.insert(name);
        } else if name.contains('(') {
            functions.insert(format!("{name} [{}]", cells.get(2).copied().unwrap_or_default()));
        } else {
            views.insert(format!("{name} [{}]", cells.get(1).copied().unwrap_or_default()));
        }
    }
    (functions, views, settings)
}

async fn strings(c: &tokio_postgres::Client, sql: &str) -> Result<BTreeSet<String>> {
    Ok(c.query(sql, &[]).await?.iter().map(|r| r.get::<_, String>(0)).collect())
}

const CALLERS: &str = "coalesce(nullif(array_to_string(ARRAY(
      SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END FROM aclexplode(ACL) a
       WHERE a.privilege_type = 'PRIV' AND a.grantee <> OWNER AND a.grantee <> 'pgworld_owner'::regrole ORDER BY 1), ', '), ''), '-')";

#[tokio::test]
async fn the_sql_api_reference_matches_the_catalog() -> Result<()> {
    let db = TestDb::new().await?;
    let c = db.superuser().await?;
    let fn_callers = CALLERS.replace("ACL", "p.proacl").replace("PRIV", "EXECUTE").replace("OWNER", "p.proowner");
    let functions = strings(
        &c,
        &format!(
            "SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') [' || {fn_callers} || ']' \
               FROM pg_proc p WHERE p.pronamespace = 'workflow'::regnamespace AND p.proname !~ '^_'"
        ),
    )
    .await?;
    let view_callers = CALLERS.replace("ACL", "c.relacl").replace("PRIV", "SELECT").replace("OWNER", "c.relowner");
    let views = strings(
        &c,
        &format!(
            "SELECT c.relname || ' [' || {view_callers} || ']' FROM pg_class c \
              WHERE c.relnamespace = 'workflow'::regnamespace AND c.relkind = 'v'"
        ),
    )
    .await?;
    // Custom settings appear once the library is loaded.
    c.execute("SELECT workflow.current_app_id()", &[]).await?;
    let settings = strings(&c, "SELECT name FROM pg_settings WHERE name LIKE 'workflow.%'").await?;

    let (doc_functions, doc_views, doc_settings) = documented();
    for (what, doc, catalog) in
        [("functions", &doc_functions, &functions), ("views", &doc_views, &views), ("settings", &doc_settings, &settings)]
    {
        let missing: Vec<_> = catalog.difference(doc).collect();
        let stale: Vec<_> = doc.difference(catalog).collect();
        ensure!(
            missing.is_empty() && stale.is_empty(),
            "docs/sql-api.md {what}: undocumented {missing:#?}, not in the catalog {stale:#?}"
        );
    }
    ensure!(functions.len() > 50 && views.len() == 3 && settings.len() >= 10, "the catalog queries see the API");
    Ok(())
}
