//! Configuration: defaults, then environment, then command line (spec/README.md), validated once
//! at start so a bad setting stops the process with a clear message instead of failing later.

use anyhow::{bail, Context, Result};
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub pool_size: usize,
}

const USAGE: &str = "usage: pgworld-dispatcher <database-url> [--host HOST] [--port PORT]\n\
                     (DATABASE_URL, HOST, PORT and PGWORLD_DB_POOL_SIZE may be set in the environment instead)";

impl Config {
    pub fn from_env_and_args(env: impl Fn(&str) -> Option<String>, args: impl IntoIterator<Item = String>) -> Result<Config> {
        let mut database_url = env("DATABASE_URL");
        let mut host = env("HOST").unwrap_or_else(|| "0.0.0.0".into());
        let mut port = env("PORT").unwrap_or_else(|| "3042".into());
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--host" => host = args.next().context(USAGE)?,
                "--port" => port = args.next().context(USAGE)?,
                "-h" | "--help" => bail!(USAGE),
                s if s.starts_with("--") => bail!("unknown option {s}\n{USAGE}"),
                _ => database_url = Some(arg),
            }
        }
        let database_url = database_url.context(USAGE)?;
        database_url.parse::<tokio_postgres::Config>().context("database URL is not a valid PostgreSQL connection string")?;
        let ip: IpAddr = host.parse().with_context(|| format!("HOST {host:?} is not an IP address"))?;
        let port: u16 = port.parse().with_context(|| format!("PORT {port:?} is not a port number"))?;
        let pool_size = match env("PGWORLD_DB_POOL_SIZE") {
            None => 16,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => bail!("PGWORLD_DB_POOL_SIZE must be an integer from 1 to 1000, got {v:?}"),
            },
        };
        Ok(Config { database_url, listen: SocketAddr::new(ip, port), pool_size })
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
        assert_eq!((c.listen.to_string().as_str(), c.pool_size), ("0.0.0.0:4000", 16));
        let c = cfg(&[("PORT", "4000")], &["postgres://b@h/db", "--host", "127.0.0.1", "--port", "5000"])?;
        assert_eq!((c.database_url.as_str(), c.listen.to_string().as_str()), ("postgres://b@h/db", "127.0.0.1:5000"));
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
    }
}
