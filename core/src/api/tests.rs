use super::render::{externs_rs, functions_sql, rust_type, with_grants};
use super::*;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// Compares a checked-in generated file with what the declaration renders; PGWORLD_BLESS=1
/// rewrites it instead.
fn check_generated(rel: &str, expected: &str) {
    let path = repo_file(rel);
    if std::env::var_os("PGWORLD_BLESS").is_some() {
        std::fs::write(&path, expected).expect("write generated file");
        return;
    }
    let current = std::fs::read_to_string(&path).expect("read generated file");
    assert!(current == expected, "{rel} is out of date with core/src/api.rs: run PGWORLD_BLESS=1 cargo test -p pgworld-core api");
}

#[test]
fn the_generated_files_follow_the_declaration() {
    check_generated("sql/functions.sql", &functions_sql());
    check_generated("extension/src/externs.rs", &externs_rs());
    let api_sql = std::fs::read_to_string(repo_file("sql/api.sql")).expect("read sql/api.sql");
    let regenerated = with_grants(&api_sql).expect("sql/api.sql has the generated-grants markers");
    check_generated("sql/api.sql", &regenerated);
}

#[test]
fn names_and_routes_are_unique() {
    let names: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
    assert_eq!(names.len(), FUNCTIONS.len());
    let routes: Vec<(&str, &str)> = FUNCTIONS.iter().filter_map(|f| f.route.map(|r| (r.method, r.path))).collect();
    assert_eq!(routes.iter().collect::<BTreeSet<_>>().len(), routes.len());
    assert!(routes.len() >= 35 && FUNCTIONS.len() >= 55, "the whole API is declared");
}

#[test]
fn every_route_path_names_the_functions_text_arguments() {
    for f in FUNCTIONS {
        let Some(route) = f.route else { continue };
        let params: Vec<&str> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .filter(|p| *p != "appId")
            .collect();
        let args: Vec<String> = f.path_args().map(|a| a.name.replace('_', "")).collect();
        let lowered: Vec<String> = params.iter().map(|p| p.to_ascii_lowercase()).collect();
        assert_eq!(lowered, args, "{}: path parameters in argument order", f.name);
        assert!(["GET", "POST", "PUT", "DELETE"].contains(&route.method), "{}", f.name);
        assert_eq!(route.path.starts_with("/api/v1/apps/{appId}"), f.name != "app_provision" && f.name != "version_notify");
        // Reads are GETs of stable functions; a GET never changes anything.
        if route.method == "GET" {
            assert_eq!(f.volatility, Volatility::Stable, "{}", f.name);
        }
    }
}

#[test]
fn generated_externs_take_only_what_they_can_parse() {
    for f in FUNCTIONS.iter().filter(|f| f.generated) {
        assert_eq!(f.returns, Returns::Json, "{}", f.name);
        assert!(f.guard.is_none(), "{}", f.name);
        for a in f.args {
            assert!(rust_type(a, f.takes_nulls).is_some(), "{}({})", f.name, a.name);
        }
    }
    // The wrappers pass jsonb as text and leave other arguments alone.
    let sql = functions_sql();
    assert!(sql.contains(
        "CREATE FUNCTION event_create(run_id text, query jsonb DEFAULT '{}', body jsonb DEFAULT '{}') RETURNS jsonb\n\
         LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp\n\
         AS $$ BEGIN RETURN workflow._ok(workflow._event_create(run_id, query::text, body::text)); END $$;\n"
    ));
    assert!(sql.contains("maint_reap_orphans(\"limit\" integer DEFAULT 100) RETURNS bigint"));
    let rs = externs_rs();
    assert!(rs.contains("fn start(workflow_name: Option<&str>, input: Option<&str>, options: Option<&str>) -> JsonB {"));
    assert!(rs.contains("let input = arg(\"input\", input.unwrap_or(\"[]\"))?;"));
}

/// `…/runs/:runId` as the docs write a declared path.
fn doc_path(path: &str) -> String {
    let short = path.replace("/api/v1/apps/{appId}", "…");
    short
        .split('/')
        .map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')).map_or(seg.to_owned(), |p| format!(":{p}")))
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_sql_reference_names_each_functions_route() {
    let doc = std::fs::read_to_string(repo_file("docs/sql-api.md")).expect("read docs/sql-api.md");
    let declared: BTreeSet<String> =
        FUNCTIONS.iter().filter_map(|f| f.route.map(|r| format!("{} {}", r.method, doc_path(r.path)))).collect();
    let mut seen = BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `") && l.contains('(')) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let name = cells[0].trim_start_matches("| `").split('(').next().unwrap_or_default();
        let Some(f) = function(name) else { continue };
        seen.insert(name);
        let cell = cells.get(3).copied().unwrap_or_default();
        let documented = cell.split('`').nth(1);
        match (f.route, documented) {
            (Some(r), Some(d)) => assert_eq!(d, format!("{} {}", r.method, doc_path(r.path)), "docs/sql-api.md: {name}'s route"),
            (Some(_), None) => panic!("docs/sql-api.md: {name} has a route the reference does not name"),
            // Functions without their own route are reached through another function's one.
            (None, Some(d)) => assert!(declared.contains(d), "docs/sql-api.md: {name} names {d}, which is not a route"),
            (None, None) => assert_eq!(cell, "—", "docs/sql-api.md: {name}"),
        }
    }
    let undocumented: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).filter(|n| !seen.contains(n)).collect();
    assert!(undocumented.is_empty(), "docs/sql-api.md does not list {undocumented:?}");
}

#[test]
fn world_js_calls_the_declared_routes() {
    let ops = std::fs::read_to_string(repo_file("world-js/src/ops.js")).expect("read world-js/src/ops.js");
    let mut checked = 0;
    for line in ops.lines().map(str::trim).filter(|l| l.contains(": op(")) {
        let (name, rest) = line.split_once(": op(").unwrap_or_default();
        let parts: Vec<&str> = rest.trim_end_matches("),").split(", ").map(|p| p.trim_matches('\'')).collect();
        let f = function(name).unwrap_or_else(|| panic!("world-js op {name} is not a declared function"));
        let r = f.route.unwrap_or_else(|| panic!("world-js op {name} has no route"));
        let path = r.path.trim_start_matches("/api/v1/apps/{appId}/");
        let path: String = path.split('/').map(|seg| if seg.starts_with('{') { "{}" } else { seg }).collect::<Vec<_>>().join("/");
        assert_eq!(
            parts,
            [r.method, path.as_str(), &f.takes("query").to_string(), &f.takes("body").to_string()],
            "world-js op {name}"
        );
        checked += 1;
    }
    assert!(checked >= 15, "world-js/src/ops.js was read ({checked} ops)");
}
