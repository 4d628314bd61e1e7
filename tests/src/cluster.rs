//! A private PostgreSQL 17 cluster for tests that must stop or restart the server, which the
//! shared test cluster cannot allow. It runs as the `postgres` OS user when the tests run as root.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct PrivateCluster {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

impl PrivateCluster {
    /// initdb + start on a free port, with the pgworld library preloaded.
    pub fn start() -> Result<PrivateCluster> {
        PrivateCluster::start_with(true)
    }

    /// initdb + start on a free port; `preload`: pgworld in `shared_preload_libraries`.
    pub fn start_with(preload: bool) -> Result<PrivateCluster> {
        let bin = PathBuf::from(std::env::var("PGWORLD_PG_BIN").context("PGWORLD_PG_BIN is set by ./pgw test")?);
        let dir = std::env::temp_dir().join(format!("pgworld-it-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let as_postgres = running_as_root();
        if as_postgres {
            let ok = Command::new("chown").args(["postgres", &dir.to_string_lossy()]).status()?.success();
            if !ok {
                bail!("chown postgres {}", dir.display());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let c = PrivateCluster { dir, port, bin, as_postgres };
        // --no-sync: a throwaway cluster; syncing a thousand files would stall the disk for the
        // other tests.
        c.run("initdb", &["-D", &c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])?;
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\nmax_connections = 100\n{}",
            c.dir.display(),
            if preload { "shared_preload_libraries = 'pgworld'\n" } else { "" }
        );
        std::fs::write(c.dir.join("data/postgresql.auto.conf"), conf)?;
        c.pg_ctl("start")?;
        Ok(c)
    }

    /// A streaming standby of `primary` (pg_basebackup -R) on a free port of its own.
    pub fn standby_of(primary: &PrivateCluster) -> Result<PrivateCluster> {
        let dir = std::env::temp_dir().join(format!("pgworld-it-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if primary.as_postgres {
            let ok = Command::new("chown").args(["postgres", &dir.to_string_lossy()]).status()?.success();
            if !ok {
                bail!("chown postgres {}", dir.display());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let c = PrivateCluster { dir, port, bin: primary.bin.clone(), as_postgres: primary.as_postgres };
        let from = primary.port.to_string();
        c.run(
            "pg_basebackup",
            &["-D", &c.data(), "-h", "127.0.0.1", "-p", &from, "-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync"],
        )?;
        // The copied settings name the primary's port and socket folder: later lines win.
        let conf = format!("port = {port}\nunix_socket_directories = '{}'\n", c.dir.display());
        let auto = c.dir.join("data/postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto)?;
        text.push_str(&conf);
        std::fs::write(&auto, text)?;
        c.pg_ctl("start")?;
        Ok(c)
    }

    /// Makes a standby the primary (pg_ctl promote, waiting until it accepts writes).
    pub fn promote(&self) -> Result<()> {
        self.run("pg_ctl", &["-D", &self.data(), "-w", "promote"])
    }

    /// Stops the server the way a crash or a fenced node does: no shutdown checkpoint.
    pub fn kill(&self) -> Result<()> {
        self.run("pg_ctl", &["-D", &self.data(), "-w", "-m", "immediate", "stop"])
    }

    /// A started cluster with pgworld in database `postgres`: the `default` app provisioned,
    /// the dispatcher's role created, and sessions acting for `default`. Returns an admin
    /// session (a superuser) that acts for `default` too.
    pub async fn with_pgworld() -> Result<(PrivateCluster, tokio_postgres::Client)> {
        PrivateCluster::with_pgworld_preloaded(true).await
    }

    /// `with_pgworld`, with the library preloaded or (`false`) loaded on first use only.
    pub async fn with_pgworld_preloaded(preload: bool) -> Result<(PrivateCluster, tokio_postgres::Client)> {
        let cluster = tokio::task::spawn_blocking(move || PrivateCluster::start_with(preload)).await??;
        let admin = crate::connect(&cluster.url("postgres")).await?;
        admin
            .batch_execute(&format!(
                "CREATE EXTENSION pgworld; SELECT workflow.app_provision('{{\"appId\":\"default\"}}'); \
                 CREATE ROLE {} LOGIN IN ROLE pgworld_service; \
                 ALTER DATABASE postgres SET workflow.app_id = 'default'; SET workflow.app_id = 'default'",
                crate::DISPATCHER_ROLE
            ))
            .await?;
        Ok((cluster, admin))
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).env_remove("RUST_BACKTRACE").output().with_context(|| format!("running {tool}"))?;
        if !out.status.success() {
            bail!("{tool} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    fn pg_ctl(&self, action: &str) -> Result<()> {
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &self.data(), "-l", &log, "-w", "-m", "fast", action])
    }

    pub fn url(&self, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/postgres", self.port)
    }

    pub fn restart(&self) -> Result<()> {
        self.pg_ctl("restart")
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
