//! Configuration: defaults, then environment, then command line (spec/README.md), validated once
//! at start so a bad setting stops the process with a clear message instead of failing later.

use anyhow::{bail, Context, Result};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub pool_size: usize,
    pub api_enabled: bool,
    /// Second listener for `/status`, `/ready` and `/metrics`; None when `PGWORLD_METRICS_PORT=0`.
    pub metrics_port: Option<u16>,
    pub connections: ConnectionLimits,
    /// Serving without authentication on a non-loopback address (the operator opted in).
    pub open_to_all: bool,
    pub tenancy: Tenancy,
    pub dispatch: DispatchConfig,
}

/// How requests are authorized (tenancy.md §2, §3).
#[derive(Debug, Clone)]
pub enum Tenancy {
    Single {
        app: String,
    },
    /// Every request carries a bearer token: Kubernetes service-account tokens, pgworld API
    /// tokens (`PGWORLD_API_TOKENS`), or both.
    Authenticated {
        k8s: Option<crate::auth::K8sSettings>,
        tokens: Option<crate::auth::TokenSettings>,
    },
}

/// Bounds on what an HTTP client can hold open.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections per listener; past this a new connection is closed at once.
    pub max_connections: usize,
    /// A request head (or the next one, on a kept-alive connection) must arrive within this.
    pub header_timeout: Duration,
}

/// The delivery loop's settings (spec/README.md, queue.md §5, §7, §11).
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub enabled: bool,
    /// Identifies this replica in `lease_owner`.
    pub owner: String,
    pub concurrency: usize,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub connect_timeout: Duration,
    pub headers_timeout: Duration,
    pub body_timeout: Duration,
    pub maintenance_interval: Duration,
    /// How long a shutdown waits for in-flight deliveries before leaving them to their leases.
    pub shutdown_drain: Duration,
}

/// Reads an integer setting within bounds, or its default.
fn int_setting(env: &impl Fn(&str) -> Option<String>, name: &str, default: u64, min: u64, max: u64) -> Result<u64> {
    match env(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => bail!("{name} must be an integer from {min} to {max}, got {v:?}"),
        },
    }
}

fn bool_setting(env: &impl Fn(&str) -> Option<String>, name: &str, default: bool) -> Result<bool> {
    match env(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(v) => bail!("{name} must be true or false, got {v:?}"),
    }
}

const USAGE: &str = "usage: DATABASE_URL=<url> pgworld-dispatcher [--host HOST] [--port PORT]\n\
                     (or DATABASE_URL_FILE=<file holding the url>; the url may also be the first argument, \
                     but then it shows in `ps`)";

impl Config {
    pub fn from_env_and_args(env: impl Fn(&str) -> Option<String>, args: impl IntoIterator<Item = String>) -> Result<Config> {
        // A URL in a file (a mounted secret) keeps the password out of the environment and `ps`.
        let mut database_url = match (env("DATABASE_URL"), env("DATABASE_URL_FILE")) {
            (Some(url), _) => Some(url),
            (None, Some(path)) => Some(
                std::fs::read_to_string(&path).with_context(|| format!("reading DATABASE_URL_FILE {path:?}"))?.trim().to_owned(),
            ),
            (None, None) => None,
        };
        let mut host = env("HOST");
        let mut port = env("PORT").unwrap_or_else(|| "3042".into());
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--host" => host = Some(args.next().context(USAGE)?),
                "--port" => port = args.next().context(USAGE)?,
                "-h" | "--help" => bail!(USAGE),
                s if s.starts_with("--") => bail!("unknown option {s}\n{USAGE}"),
                _ => database_url = Some(arg),
            }
        }
        let database_url = database_url.context(USAGE)?;
        database_url.parse::<tokio_postgres::Config>().context("database URL is not a valid PostgreSQL connection string")?;
        let sa_path = std::path::PathBuf::from(
            env("PLT_WORLD_SA_PATH").unwrap_or_else(|| "/var/run/secrets/kubernetes.io/serviceaccount".into()),
        );
        let mode = crate::auth::detect_mode(&env, &sa_path)?;
        let api_tokens = bool_setting(&env, "PGWORLD_API_TOKENS", false)?;
        // Without authentication the façade is open to whoever reaches it: loopback unless the
        // operator says otherwise, out loud.
        let authenticated = mode == "k8s" || api_tokens;
        let host = host.unwrap_or_else(|| if authenticated { "0.0.0.0".into() } else { "127.0.0.1".into() });
        let ip: IpAddr = host.parse().with_context(|| format!("HOST {host:?} is not an IP address"))?;
        let open_to_all = !authenticated && !ip.is_loopback();
        if open_to_all && !bool_setting(&env, "PGWORLD_ALLOW_UNAUTHENTICATED", false)? {
            let mode = if mode == "ecs" { "ECS was detected but no authentication is configured" } else { "single-tenant mode" };
            bail!(
                "refusing to serve the façade on {ip} without authentication ({mode}): anyone who can reach the \
                 port could read every run and its encryption keys. Turn on API tokens (PGWORLD_API_TOKENS=1, \
                 then give each app a token from workflow.app_token_create), run in Kubernetes mode \
                 (PGWORLD_MODE=k8s), listen on loopback (HOST=127.0.0.1, the default) behind an authenticating \
                 proxy, or set PGWORLD_ALLOW_UNAUTHENTICATED=1 to serve it open anyway"
            );
        }
        let port: u16 = port.parse().with_context(|| format!("PORT {port:?} is not a port number"))?;
        let pool_size = match env("PGWORLD_DB_POOL_SIZE") {
            None => 16,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => bail!("PGWORLD_DB_POOL_SIZE must be an integer from 1 to 1000, got {v:?}"),
            },
        };
        let api_enabled = bool_setting(&env, "PGWORLD_API_ENABLED", true)?;
        // Platformatic's switch is honoured as an alias for turning delivery off.
        let dispatch_enabled =
            bool_setting(&env, "PGWORLD_DISPATCH_ENABLED", true)? && bool_setting(&env, "WF_ENABLE_POLLER", true)?;
        let ms =
            |name: &str, default: u64, min: u64, max: u64| int_setting(&env, name, default, min, max).map(Duration::from_millis);
        let lease_seconds = int_setting(&env, "PGWORLD_LEASE_SECONDS", 60, 1, 86_400)?;
        let dispatch = DispatchConfig {
            enabled: dispatch_enabled,
            owner: format!("{}:{}", env("HOSTNAME").unwrap_or_else(|| "pgworld-dispatcher".into()), std::process::id()),
            concurrency: usize::try_from(int_setting(&env, "PGWORLD_DISPATCH_CONCURRENCY", 200, 1, 100_000)?)?,
            lease: Duration::from_secs(lease_seconds),
            poll_interval: ms("PGWORLD_POLL_INTERVAL_MS", 1000, 10, 3_600_000)?,
            connect_timeout: ms("PGWORLD_DISPATCH_CONNECT_TIMEOUT_MS", 10_000, 1, 3_600_000)?,
            headers_timeout: ms("PGWORLD_DISPATCH_HEADERS_TIMEOUT_MS", 900_000, 1, 86_400_000)?,
            body_timeout: ms("PGWORLD_DISPATCH_BODY_TIMEOUT_MS", 300_000, 1, 86_400_000)?,
            maintenance_interval: Duration::from_secs(int_setting(&env, "PGWORLD_MAINTENANCE_INTERVAL_S", 60, 1, 86_400)?),
            shutdown_drain: ms("PGWORLD_SHUTDOWN_DRAIN_MS", 30_000, 0, 3_600_000)?,
        };
        let metrics_port = match int_setting(&env, "PGWORLD_METRICS_PORT", 9090, 0, 65535)? {
            0 => None,
            p => Some(u16::try_from(p)?),
        };
        let tokens = api_tokens.then(|| -> Result<crate::auth::TokenSettings> {
            Ok(crate::auth::TokenSettings {
                cache_ttl: Duration::from_secs(int_setting(&env, "PGWORLD_TOKEN_CACHE_S", 60, 1, 3600)?),
            })
        });
        let tokens = tokens.transpose()?;
        let k8s = (mode == "k8s").then(|| crate::auth::K8sSettings {
            api_server: env("K8S_API_SERVER").unwrap_or_else(|| "https://kubernetes.default.svc".into()),
            ca_cert: env("K8S_CA_CERT").map_or_else(|| sa_path.join("ca.crt"), std::path::PathBuf::from),
            sa_path,
            admin: env("K8S_ADMIN_SERVICE_ACCOUNT").filter(|s| !s.is_empty()),
            audiences: env("PGWORLD_K8S_AUDIENCES")
                .map(|a| a.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
        });
        let tenancy = if authenticated {
            Tenancy::Authenticated { k8s, tokens }
        } else {
            Tenancy::Single { app: env("PLT_WORLD_APP_ID").filter(|s| !s.is_empty()).unwrap_or_else(|| "default".into()) }
        };
        let connections = ConnectionLimits {
            max_connections: usize::try_from(int_setting(&env, "PGWORLD_MAX_CONNECTIONS", 4096, 1, 1_000_000)?)?,
            header_timeout: Duration::from_secs(int_setting(&env, "PGWORLD_HEADER_TIMEOUT_S", 10, 1, 3600)?),
        };
        Ok(Config {
            database_url,
            listen: SocketAddr::new(ip, port),
            pool_size,
            api_enabled,
            metrics_port,
            connections,
            open_to_all,
            tenancy,
            dispatch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(env: &[(&str, &str)], args: &[&str]) -> Result<Config> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Config::from_env_and_args(
            |k| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone()),
            args.iter().map(|s| (*s).to_owned()),
        )
    }

    #[test]
    fn cli_overrides_env_over_defaults() -> Result<()> {
        let c = cfg(&[("DATABASE_URL", "postgres://a@h/db"), ("PORT", "4000")], &[])?;
        assert_eq!((c.listen.to_string().as_str(), c.pool_size), ("127.0.0.1:4000", 16));
        let c = cfg(&[("PORT", "4000")], &["postgres://b@h/db", "--host", "127.0.0.1", "--port", "5000"])?;
        assert_eq!((c.database_url.as_str(), c.listen.to_string().as_str()), ("postgres://b@h/db", "127.0.0.1:5000"));
        Ok(())
    }

    #[test]
    fn the_database_url_can_come_from_a_file() -> Result<()> {
        let path = std::env::temp_dir().join(format!("pgworld-url-{}", std::process::id()));
        std::fs::write(&path, "postgres://from@file/db\n")?;
        let file = path.to_string_lossy().into_owned();
        let c = cfg(&[("DATABASE_URL_FILE", &file)], &[])?;
        assert_eq!(c.database_url, "postgres://from@file/db");
        let c = cfg(&[("DATABASE_URL_FILE", &file), ("DATABASE_URL", "postgres://env@h/db")], &[])?;
        assert_eq!(c.database_url, "postgres://env@h/db");
        std::fs::remove_file(&path)?;
        let missing = cfg(&[("DATABASE_URL_FILE", &file)], &[]).map(|_| ()).err().map(|e| format!("{e:#}"));
        assert!(missing.as_deref().is_some_and(|m| m.contains("DATABASE_URL_FILE")), "{missing:?}");
        Ok(())
    }

    #[test]
    fn without_authentication_the_facade_stays_on_loopback_unless_opened_out_loud() -> Result<()> {
        let url = "postgres://x@h/db";
        let single = [("PLT_WORLD_SA_PATH", "/nonexistent")];
        let c = cfg(&single, &[url])?;
        assert!(c.listen.ip().is_loopback() && !c.open_to_all, "{}", c.listen);
        assert!(cfg(&single, &[url, "--host", "::1"])?.listen.ip().is_loopback());
        let refused = cfg(&single, &[url, "--host", "0.0.0.0"]).map(|_| ()).err().map(|e| format!("{e:#}"));
        assert!(refused.as_deref().is_some_and(|m| m.contains("PGWORLD_ALLOW_UNAUTHENTICATED")), "{refused:?}");
        let opened = cfg(&[single[0], ("HOST", "0.0.0.0"), ("PGWORLD_ALLOW_UNAUTHENTICATED", "1")], &[url])?;
        assert!(opened.open_to_all && opened.listen.to_string() == "0.0.0.0:3042");
        let ecs =
            cfg(&[single[0], ("PGWORLD_MODE", "ecs"), ("HOST", "0.0.0.0")], &[url]).map(|_| ()).err().map(|e| format!("{e:#}"));
        assert!(ecs.as_deref().is_some_and(|m| m.contains("ECS")), "{ecs:?}");
        let detected =
            cfg(&[single[0], ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4"), ("HOST", "0.0.0.0")], &[url]);
        assert!(detected.is_err(), "ECS detected without authentication: no open façade");
        // With API tokens (ECS's supported way) every request is authenticated, so all addresses.
        let tokens =
            cfg(&[single[0], ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4"), ("PGWORLD_API_TOKENS", "1")], &[url])?;
        assert!(tokens.listen.to_string() == "0.0.0.0:3042" && !tokens.open_to_all);
        // Kubernetes mode authenticates every request, so it listens on every address by default.
        let k8s = cfg(&[single[0], ("PGWORLD_MODE", "k8s"), ("K8S_ADMIN_SERVICE_ACCOUNT", "ops:admin")], &[url])?;
        assert_eq!(k8s.listen.to_string(), "0.0.0.0:3042");
        Ok(())
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(cfg(&[], &[]).is_err(), "database URL is required");
        assert!(cfg(&[], &["postgres://x@h/db", "--port", "http"]).is_err());
        assert!(cfg(&[], &["postgres://x@h/db", "--host", "localhost:1"]).is_err());
        assert!(cfg(&[("PGWORLD_DB_POOL_SIZE", "0")], &["postgres://x@h/db"]).is_err());
        assert!(cfg(&[], &["postgres://x@h/db", "--verbose"]).is_err());
        assert!(cfg(&[], &["not a url ==="]).is_err());
        assert!(cfg(&[("PGWORLD_LEASE_SECONDS", "0")], &["postgres://x@h/db"]).is_err());
        assert!(cfg(&[("PGWORLD_DISPATCH_CONCURRENCY", "-3")], &["postgres://x@h/db"]).is_err());
        assert!(cfg(&[("PGWORLD_DISPATCH_ENABLED", "maybe")], &["postgres://x@h/db"]).is_err());
    }

    #[test]
    fn tenancy_mode_is_detected_or_forced() -> Result<()> {
        let c = cfg(&[("PLT_WORLD_SA_PATH", "/nonexistent")], &["postgres://x@h/db"])?;
        assert!(matches!(c.tenancy, Tenancy::Single { ref app } if app == "default"));
        let c = cfg(&[("PGWORLD_MODE", "k8s"), ("K8S_ADMIN_SERVICE_ACCOUNT", "ops:admin")], &["postgres://x@h/db"])?;
        assert!(
            matches!(c.tenancy, Tenancy::Authenticated { k8s: Some(ref k), tokens: None } if k.admin.as_deref() == Some("ops:admin"))
        );
        let c = cfg(&[("PLT_WORLD_SA_PATH", "/nonexistent"), ("PGWORLD_API_TOKENS", "1")], &["postgres://x@h/db"])?;
        assert!(matches!(c.tenancy, Tenancy::Authenticated { k8s: None, tokens: Some(ref t) } if t.cache_ttl.as_secs() == 60));
        let both =
            cfg(&[("PGWORLD_MODE", "k8s"), ("PGWORLD_API_TOKENS", "1"), ("PGWORLD_TOKEN_CACHE_S", "5")], &["postgres://x@h/db"])?;
        assert!(
            matches!(both.tenancy, Tenancy::Authenticated { k8s: Some(_), tokens: Some(ref t) } if t.cache_ttl.as_secs() == 5)
        );
        assert!(cfg(&[("PGWORLD_API_TOKENS", "1"), ("PGWORLD_TOKEN_CACHE_S", "0")], &["postgres://x@h/db"]).is_err());
        assert!(cfg(&[("PGWORLD_MODE", "cloud")], &["postgres://x@h/db"]).is_err());
        assert_eq!(cfg(&[("PGWORLD_METRICS_PORT", "0")], &["postgres://x@h/db"])?.metrics_port, None);
        Ok(())
    }

    #[test]
    fn dispatch_settings_have_the_spec_defaults() -> Result<()> {
        let d = cfg(&[], &["postgres://x@h/db"])?.dispatch;
        assert!(d.enabled);
        assert_eq!((d.concurrency, d.lease.as_secs(), d.poll_interval.as_millis()), (200, 60, 1000));
        assert_eq!((d.connect_timeout.as_secs(), d.headers_timeout.as_secs(), d.body_timeout.as_secs()), (10, 900, 300));
        assert_eq!(d.maintenance_interval.as_secs(), 60);
        assert!(!cfg(&[("WF_ENABLE_POLLER", "false")], &["postgres://x@h/db"])?.dispatch.enabled);
        Ok(())
    }
}
