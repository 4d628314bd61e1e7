//! What the façade tests of both authenticated modes share: a JSON client, and the isolation
//! check over every app-scoped route of the served OpenAPI document.

use anyhow::{ensure, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};

pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client { base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    /// Every app-scoped route refuses `token` on `other_app` with 403 (admin routes: admin
    /// required; app routes: app mismatch); returns how many routes were checked.
    pub async fn refuses_on_every_app_route(&self, token: &str, other_app: &str) -> Result<usize> {
        let doc: Value = self.http.get(format!("{}/openapi.json", self.base)).send().await?.json().await?;
        let mut checked = 0;
        for (path, ops) in doc["paths"].as_object().context("paths")? {
            if !path.starts_with("/api/v1/apps/{appId}") {
                continue;
            }
            for (method, op) in ops.as_object().context("operations")? {
                let access_admin = op.get("x-pgworld-access").is_some();
                let concrete = path
                    .replace("{appId}", other_app)
                    .split('/')
                    .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                    .collect::<Vec<_>>()
                    .join("/");
                let m = Method::from_bytes(method.to_uppercase().as_bytes())?;
                let body = (m != Method::GET).then(|| json!({}));
                let (s, v) = self.call(m, &concrete, Some(token), body).await?;
                let want = if access_admin { "Forbidden: admin access required" } else { "Forbidden: app ID mismatch" };
                ensure!(s == 403 && v["message"] == want, "{method} {concrete}: {s} {v}");
                checked += 1;
            }
        }
        ensure!(checked >= 30, "checked {checked} routes");
        Ok(checked)
    }
}
