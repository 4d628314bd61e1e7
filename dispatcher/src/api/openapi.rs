//! `/openapi.json`, generated from the route table so it always matches what is served.

use crate::routes::{Access, Call, Route, ROUTES};
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

fn operation(route: &Route) -> Value {
    let mut params: Vec<Value> = Vec::new();
    if route.names_app() {
        params.push(json!({"name": "appId", "in": "path", "required": true, "schema": {"type": "string"},
                           "description": "App label (ignored in single-tenant mode)"}));
    }
    for p in route.path_params() {
        params.push(json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}));
    }
    let (takes_query, body_types): (bool, Vec<&str>) = match route.call {
        Call::Function { query, body, .. } => (query, if body { vec!["application/json"] } else { vec![] }),
        Call::Provision => (false, vec!["application/json"]),
        Call::Enqueue => (false, vec!["application/json", "application/cbor"]),
        Call::StreamPut => (false, vec!["application/json", "text/plain", "application/octet-stream"]),
        Call::StreamRead => (true, vec![]),
    };
    if takes_query {
        params.push(json!({"name": "query", "in": "query", "required": false, "style": "form", "explode": true,
                           "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                           "description": "Query parameters as the route defines them (spec/http-api.md §4)"}));
    }
    let mut op = json!({
        "summary": route.summary,
        "operationId": format!("{}{}", route.method.as_str().to_lowercase(), route.path.replace(['/', '{', '}', '-'], "_")),
        "parameters": params,
        "responses": {
            route.ok.as_u16().to_string(): {"description": "Success",
                "content": if route.call == Call::StreamRead { json!({"application/octet-stream": {}}) } else { json!({"application/json": {}}) }},
            "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    });
    if !body_types.is_empty() {
        let content: Map<String, Value> = body_types.iter().map(|t| ((*t).to_owned(), json!({}))).collect();
        op["requestBody"] = json!({"content": content});
    }
    if route.access == Access::Admin {
        op["x-pgworld-access"] = json!("admin");
    }
    op["x-pgworld-sql"] = json!(format!("workflow.{}", route.function));
    op
}

pub fn build() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in ROUTES.iter() {
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_lowercase()] = operation(route);
    }
    for (path, summary) in
        [("/status", "Process is up"), ("/ready", "Database and extension ready"), ("/metrics", "Prometheus metrics")]
    {
        paths.insert(path.into(), json!({"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "pgworld façade", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Wire-compatible with the @platformatic/world client; each route is one workflow.* SQL call."},
        "paths": paths,
        "components": {"schemas": {"Error": {"type": "object", "required": ["statusCode", "error", "message"], "properties": {
            "statusCode": {"type": "integer"}, "error": {"type": "string"}, "message": {"type": "string"},
            "code": {"type": "string"}, "meta": {"type": "object"}}}}},
    })
}

pub async fn document() -> impl IntoResponse {
    axum::Json(build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_once() {
        let doc = build();
        for r in ROUTES.iter() {
            let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{} {}", r.method, r.path);
            let names: Vec<&str> = op["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
            for p in r.path_params() {
                assert!(names.contains(&p), "{} lacks {p}", r.path);
            }
        }
        assert!(doc["paths"]["/api/v1/apps/{appId}/queue"]["post"]["requestBody"]["content"]["application/cbor"].is_object());
    }

    /// docs/http-api.md's route table, row by row, is what `/openapi.json` serves: method, path,
    /// who may call it, its SQL function and its success status.
    #[test]
    fn docs_http_api_matches_the_openapi_document() {
        let doc = build();
        let mut served = std::collections::BTreeSet::new();
        for (path, methods) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in methods.as_object().into_iter().flatten() {
                let access = if path.starts_with("/api/") { op["x-pgworld-access"].as_str().unwrap_or("app") } else { "none" };
                let sql = op["x-pgworld-sql"].as_str().map_or("-".to_owned(), |f| format!("`{f}`"));
                let ok =
                    op["responses"].as_object().and_then(|r| r.keys().find(|k| *k != "default").cloned()).unwrap_or_default();
                served.insert(format!("| `{}` | `{path}` | {access} | {sql} | {ok} |", method.to_uppercase()));
            }
        }
        let text = include_str!("../../../docs/http-api.md");
        let documented: std::collections::BTreeSet<String> = text
            .lines()
            .filter(|l| {
                l.starts_with("| `GET`") || l.starts_with("| `POST`") || l.starts_with("| `PUT`") || l.starts_with("| `DELETE`")
            })
            .map(|l| l.splitn(7, " | ").take(5).collect::<Vec<_>>().join(" | ") + " |")
            .collect();
        let missing: Vec<_> = served.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&served).collect();
        assert!(missing.is_empty() && stale.is_empty(), "docs/http-api.md: undocumented {missing:#?}, not served {stale:#?}");
        assert!(served.len() > 30, "the document lists the routes");
    }
}
