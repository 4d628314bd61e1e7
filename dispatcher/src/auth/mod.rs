//! Tenancy modes and per-request authorization (spec/tenancy.md §2–§4, §6). Single-tenant mode
//! acts for one app with no authentication. Authenticated mode takes a bearer token on every
//! request: a pgworld API token (`pgw_…`, see tokens.rs) and/or a Kubernetes service-account
//! token, which is checked with a TokenReview through `kube`; successful reviews are cached by
//! the token's SHA-256 for 270 s and the identity's app bindings are read on every request.

use crate::errors::ApiError;
use crate::metrics::Metrics;
use crate::routes::{Access, Route};
use anyhow::{bail, Context, Result};
use axum::http::{header, HeaderMap, StatusCode};
use deadpool_postgres::Pool;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

mod tokens;
pub use tokens::{TokenAuth, TokenSettings};

/// Who a request acts as: the app to set for its transaction, and whether it is the admin.
#[derive(Debug, Clone)]
pub struct Caller {
    pub app: Option<String>,
    pub admin: bool,
}

pub enum Auth {
    Single {
        app: String,
    },
    /// Bearer tokens: pgworld API tokens, Kubernetes service-account tokens, or both.
    Authenticated {
        k8s: Option<Box<K8sAuth>>,
        tokens: Option<TokenAuth>,
    },
}

/// Kubernetes mode settings (spec/README.md configuration).
#[derive(Debug, Clone)]
pub struct K8sSettings {
    pub api_server: String,
    pub sa_path: PathBuf,
    pub ca_cert: PathBuf,
    pub admin: Option<String>,
    pub audiences: Vec<String>,
}

const CACHE_TTL: Duration = Duration::from_secs(270);
const CACHE_MAX: usize = 10_000;
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Identity {
    namespace: String,
    service_account: String,
    admin: bool,
}

/// Successful checks by token hash, for a while, with insertion order for eviction: the tokens
/// themselves are never kept.
struct TokenCache<V> {
    entries: HashMap<[u8; 32], (V, Instant)>,
    order: VecDeque<[u8; 32]>,
    ttl: Duration,
}

impl<V: Clone> TokenCache<V> {
    fn new(ttl: Duration) -> Mutex<TokenCache<V>> {
        Mutex::new(TokenCache { entries: HashMap::new(), order: VecDeque::new(), ttl })
    }

    fn get(cache: &Mutex<Self>, key: &[u8; 32]) -> Option<V> {
        let cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.entries.get(key).filter(|(_, at)| at.elapsed() < cache.ttl).map(|(v, _)| v.clone())
    }

    fn put(cache: &Mutex<Self>, key: [u8; 32], value: V) {
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        let TokenCache { entries, order, .. } = &mut *cache;
        if entries.insert(key, (value, Instant::now())).is_none() {
            order.push_back(key);
        }
        while entries.len() > CACHE_MAX {
            match order.pop_front() {
                Some(old) => {
                    entries.remove(&old);
                }
                None => break,
            }
        }
    }

    fn forget(cache: &Mutex<Self>, doomed: impl Fn(&V) -> bool) {
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.entries.retain(|_, (v, _)| !doomed(v));
        let TokenCache { entries, order, .. } = &mut *cache;
        order.retain(|k| entries.contains_key(k));
    }
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub struct K8sAuth {
    client: kube::Client,
    settings: K8sSettings,
    metrics: Arc<Metrics>,
    cache: Mutex<TokenCache<Identity>>,
}

/// The mode chosen at start-up (tenancy.md §2).
pub fn detect_mode(env: &impl Fn(&str) -> Option<String>, sa_path: &std::path::Path) -> Result<&'static str> {
    match env("PGWORLD_MODE").as_deref() {
        Some("single") => return Ok("single"),
        Some("k8s") => return Ok("k8s"),
        // ECS has no authentication mode yet: single-tenant, and refused off loopback (config).
        Some("ecs") => return Ok("ecs"),
        Some(other) => bail!("PGWORLD_MODE must be single, k8s or ecs, got {other:?}"),
        None => {}
    }
    if sa_path.join("token").exists() {
        return Ok("k8s");
    }
    if env("ECS_CONTAINER_METADATA_URI_V4").is_some() || env("ECS_CONTAINER_METADATA_URI").is_some() {
        return Ok("ecs");
    }
    Ok("single")
}

impl K8sAuth {
    pub fn new(settings: K8sSettings, metrics: Arc<Metrics>) -> Result<K8sAuth> {
        let uri: axum::http::Uri =
            settings.api_server.parse().with_context(|| format!("K8S_API_SERVER {:?}", settings.api_server))?;
        let mut cfg = kube::Config::new(uri);
        let pem =
            std::fs::read(&settings.ca_cert).with_context(|| format!("reading the CA bundle {}", settings.ca_cert.display()))?;
        let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut pem.as_slice()).filter_map(|c| c.ok()).map(|c| c.to_vec()).collect();
        if certs.is_empty() {
            bail!("no certificate in {}", settings.ca_cert.display());
        }
        cfg.root_cert = Some(certs);
        // kube re-reads the token file as the kubelet rotates it.
        cfg.auth_info.token_file = Some(settings.sa_path.join("token").to_string_lossy().into_owned());
        cfg.connect_timeout = Some(REVIEW_TIMEOUT);
        cfg.read_timeout = Some(REVIEW_TIMEOUT);
        let client = kube::Client::try_from(cfg).context("building the Kubernetes client")?;
        Ok(K8sAuth { client, settings, metrics, cache: TokenCache::new(CACHE_TTL) })
    }

    /// Ok(Some) for a valid service-account identity, Ok(None) for an invalid one, Err when the
    /// API server could not answer (a 503, never the caller's fault).
    async fn identity(&self, token: &str) -> Result<Option<Identity>, ApiError> {
        let key = token_key(token);
        if let Some(id) = TokenCache::get(&self.cache, &key) {
            self.metrics.token_review("cached");
            return Ok(Some(id));
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: (!self.settings.audiences.is_empty()).then(|| self.settings.audiences.clone()),
            },
            ..TokenReview::default()
        };
        let api: kube::Api<TokenReview> = kube::Api::all(self.client.clone());
        let answer = tokio::time::timeout(REVIEW_TIMEOUT, api.create(&kube::api::PostParams::default(), &review)).await;
        let status = match answer {
            Ok(Ok(r)) => r.status.unwrap_or_default(),
            Ok(Err(e)) => {
                self.metrics.token_review("error");
                tracing::warn!(error = %e, "TokenReview failed");
                return Err(ApiError::unavailable("Kubernetes API unavailable"));
            }
            Err(_) => {
                self.metrics.token_review("error");
                return Err(ApiError::unavailable("Kubernetes API unavailable"));
            }
        };
        let username = status.user.as_ref().and_then(|u| u.username.clone()).unwrap_or_default();
        let parts: Vec<&str> = username.split(':').collect();
        let audience_ok = self.settings.audiences.is_empty()
            || status.audiences.unwrap_or_default().iter().any(|a| self.settings.audiences.contains(a));
        let valid = status.authenticated == Some(true)
            && parts.len() == 4
            && parts[0] == "system"
            && parts[1] == "serviceaccount"
            && audience_ok;
        if !valid {
            self.metrics.token_review("rejected");
            return Ok(None);
        }
        let who = format!("{}:{}", parts[2], parts[3]);
        let id = Identity {
            namespace: parts[2].to_owned(),
            service_account: parts[3].to_owned(),
            admin: self.settings.admin.as_deref() == Some(who.as_str()),
        };
        self.metrics.token_review("authenticated");
        TokenCache::put(&self.cache, key, id.clone());
        Ok(Some(id))
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "WF_UNAUTHORIZED", message)
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "WF_FORBIDDEN", message)
}

fn app_not_found(app: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "WF_APP_NOT_FOUND", format!("Application {app} not found"))
}

async fn db_lookup<T>(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    read: impl FnOnce(&tokio_postgres::Row) -> T,
) -> Result<T, ApiError> {
    let client = pool.get().await.map_err(|_| ApiError::unavailable("Database unavailable"))?;
    let stmt = client.prepare_cached(sql).await.map_err(|e| ApiError::from_db(&e))?;
    let row = client.query_one(&stmt, params).await.map_err(|e| ApiError::from_db(&e))?;
    Ok(read(&row))
}

impl Auth {
    /// Decides a request per tenancy.md §4; the result names the app its transaction acts for.
    pub async fn authorize(
        &self,
        route: &Route,
        url_app: Option<&str>,
        headers: &HeaderMap,
        pool: &Pool,
    ) -> Result<Caller, ApiError> {
        let (k8s, api_tokens) = match self {
            // Single-tenant: the URL's app is ignored and everyone is admin.
            Auth::Single { app } => return Ok(Caller { app: Some(app.clone()), admin: true }),
            Auth::Authenticated { k8s, tokens } => (k8s, tokens),
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("Unauthorized: missing or invalid Authorization header"))?;
        // (apps the caller may act for, admin); None: not a valid credential.
        let identity: Option<(Vec<String>, bool)> = match (api_tokens, k8s) {
            (Some(t), _) if token.starts_with(pgworld_core::tokens::PREFIX) => {
                t.identity(token, pool).await?.map(|id| (id.app.into_iter().collect(), id.admin))
            }
            (_, Some(k8s)) => match k8s.identity(token).await? {
                Some(id) => {
                    let apps: serde_json::Value =
                        db_lookup(pool, "SELECT workflow.k8s_identity($1, $2)", &[&id.namespace, &id.service_account], |r| {
                            r.try_get(0).unwrap_or_default()
                        })
                        .await?;
                    let bindings = apps.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
                    Some((bindings, id.admin))
                }
                None => None,
            },
            _ => None,
        };
        let admin = identity.as_ref().is_some_and(|i| i.1);
        let bindings = identity.as_ref().map(|i| i.0.clone()).unwrap_or_default();
        if identity.is_none() || (bindings.is_empty() && !admin) {
            return Err(match route.access {
                Access::Admin => forbidden("Forbidden: admin access required"),
                Access::App => unauthorized("Unauthorized: invalid credentials"),
            });
        }
        let exists = |app: String| async move {
            db_lookup(pool, "SELECT workflow.app_exists($1)", &[&app], |r| r.try_get::<_, bool>(0).unwrap_or(false)).await
        };
        match route.access {
            Access::Admin => {
                if !admin {
                    return Err(forbidden("Forbidden: admin access required"));
                }
                // POST /api/v1/apps creates its app; every other admin route needs it to exist.
                if let Some(app) = url_app.filter(|_| route.names_app()) {
                    if !exists(app.to_owned()).await? {
                        return Err(app_not_found(app));
                    }
                }
                Ok(Caller { app: url_app.map(str::to_owned), admin: true })
            }
            Access::App => {
                let app = url_app.unwrap_or_default().to_owned();
                if admin {
                    if !exists(app.clone()).await? {
                        return Err(app_not_found(&app));
                    }
                    return Ok(Caller { app: Some(app), admin: false });
                }
                // Bindings only name existing apps, so an unknown app is a mismatch too: app
                // existence is not disclosed to non-admins.
                if bindings.contains(&app) {
                    Ok(Caller { app: Some(app), admin: false })
                } else {
                    Err(forbidden("Forbidden: app ID mismatch"))
                }
            }
        }
    }

    /// How requests are authorized, for the start-up log.
    pub fn mode(&self) -> &'static str {
        match self {
            Auth::Single { .. } => "single",
            Auth::Authenticated { k8s: Some(_), tokens: Some(_) } => "k8s+tokens",
            Auth::Authenticated { k8s: Some(_), tokens: None } => "k8s",
            Auth::Authenticated { .. } => "tokens",
        }
    }

    /// A token revoked through this replica stops working here at once, not after the cache TTL.
    pub fn forget_api_token(&self, token_id: &str) {
        if let Auth::Authenticated { tokens: Some(t), .. } = self {
            t.forget(token_id);
        }
    }
}
