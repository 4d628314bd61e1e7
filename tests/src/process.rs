//! The real `pgworld-dispatcher` binary as a child process: started with test settings, stopped
//! with SIGTERM or killed with SIGKILL, its log kept under target/test-logs.

use anyhow::{Context, Result};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DispatcherProc {
    child: Option<Child>,
    pub port: u16,
    pub log: std::path::PathBuf,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn log_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-logs/dispatchers");
    let _ = std::fs::create_dir_all(&root);
    root
}

impl DispatcherProc {
    /// Starts `bin` against `database_url`, with fast polling and maintenance unless overridden.
    pub fn spawn(bin: &str, database_url: &str, name: &str, env: &[(&str, &str)]) -> Result<DispatcherProc> {
        Self::spawn_on("127.0.0.1", bin, database_url, name, env)
    }

    /// The same, listening on `host` (reached on 127.0.0.1 all the same).
    pub fn spawn_on(host: &str, bin: &str, database_url: &str, name: &str, env: &[(&str, &str)]) -> Result<DispatcherProc> {
        let port = free_port()?;
        let log = log_dir().join(format!("{name}-{port}.log"));
        let file = std::fs::File::create(&log)?;
        let mut cmd = Command::new(bin);
        // From the environment, as in production: a URL argument would show in `ps`.
        cmd.args(["--host", host, "--port", &port.to_string()])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info,pgworld_dispatcher=debug")
            .env("PGWORLD_POLL_INTERVAL_MS", "200")
            .env("PGWORLD_MAINTENANCE_INTERVAL_S", "3600")
            .env("PGWORLD_DB_POOL_SIZE", "8")
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("starting {bin}"))?;
        Ok(DispatcherProc { child: Some(child), port, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// SIGKILL: no drain, no outcome recorded, leases left to expire.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for a graceful exit; returns its exit success.
    pub fn terminate(&mut self, timeout: Duration) -> Result<bool> {
        let Some(mut c) = self.child.take() else { return Ok(false) };
        Command::new("kill").args(["-TERM", &c.id().to_string()]).status()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = c.try_wait()? {
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        Ok(false)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for DispatcherProc {
    fn drop(&mut self) {
        self.kill9();
    }
}
