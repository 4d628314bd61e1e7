//! pgworld API tokens (`pgw_<id>_<secret>`): the database resolves one to its app or to admin
//! (`workflow.token_identity`, which compares the stored hash in constant time). Answers are
//! cached by the token's SHA-256 for the TTL, so a token revoked elsewhere stops working within
//! it; one revoked through this replica is forgotten at once. Rejections are not cached, so a
//! token works as soon as it is created.

use super::{db_lookup, token_key, TokenCache};
use crate::errors::ApiError;
use crate::metrics::Metrics;
use deadpool_postgres::Pool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub cache_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct TokenIdentity {
    pub token_id: String,
    pub app: Option<String>,
    pub admin: bool,
}

pub struct TokenAuth {
    metrics: Arc<Metrics>,
    cache: Mutex<TokenCache<TokenIdentity>>,
}

impl TokenAuth {
    pub fn new(settings: &TokenSettings, metrics: Arc<Metrics>) -> TokenAuth {
        TokenAuth { metrics, cache: TokenCache::new(settings.cache_ttl) }
    }

    /// Ok(None) for a token that is malformed, unknown, revoked or wrong.
    pub async fn identity(&self, token: &str, pool: &Pool) -> Result<Option<TokenIdentity>, ApiError> {
        let key = token_key(token);
        if let Some(id) = TokenCache::get(&self.cache, &key) {
            self.metrics.api_token("cached");
            return Ok(Some(id));
        }
        let answer: Option<serde_json::Value> =
            db_lookup(pool, "SELECT workflow.token_identity($1)", &[&token], |r| r.try_get(0).ok().flatten()).await?;
        let Some(answer) = answer else {
            self.metrics.api_token("rejected");
            return Ok(None);
        };
        let id = TokenIdentity {
            token_id: answer["tokenId"].as_str().unwrap_or_default().to_owned(),
            app: answer["appId"].as_str().map(str::to_owned),
            admin: answer["admin"].as_bool().unwrap_or(false),
        };
        self.metrics.api_token("authenticated");
        TokenCache::put(&self.cache, key, id.clone());
        Ok(Some(id))
    }

    pub fn forget(&self, token_id: &str) {
        TokenCache::forget(&self.cache, |id| id.token_id == token_id);
    }
}
