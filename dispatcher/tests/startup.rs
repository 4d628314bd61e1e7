//! Start-up refusals of the real binary: a dispatcher without authentication does not serve the
//! façade beyond loopback unless the operator opts in; with API tokens it does.

use anyhow::{ensure, Result};
use std::process::Command;

fn start(env: &[(&str, &str)]) -> Result<(Option<i32>, String)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgworld-dispatcher"));
    // Nothing listens on port 1: a start that got past its checks would fail to connect instead.
    cmd.env_clear().env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none").env("PLT_WORLD_SA_PATH", "/nonexistent");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    Ok((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()))
}

#[test]
fn an_unauthenticated_dispatcher_refuses_to_listen_beyond_loopback() -> Result<()> {
    for env in [
        vec![("HOST", "0.0.0.0")],
        vec![("HOST", "0.0.0.0"), ("PGWORLD_MODE", "ecs")],
        vec![("HOST", "10.1.2.3"), ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4")],
    ] {
        let (code, stderr) = start(&env)?;
        ensure!(code == Some(2), "{env:?}: exit {code:?}");
        ensure!(stderr.contains("refusing to serve") && stderr.contains("PGWORLD_ALLOW_UNAUTHENTICATED"), "{env:?}: {stderr}");
        ensure!(stderr.contains("PGWORLD_API_TOKENS=1"), "the refusal names the supported way: {stderr}");
    }
    let (_, ecs) = start(&[("HOST", "0.0.0.0"), ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4")])?;
    ensure!(ecs.contains("ECS was detected"), "{ecs}");
    // Opted in, on loopback, or with API tokens (on ECS too, on every address by default), it
    // gets past the check and fails on the unreachable database.
    for env in [
        vec![("HOST", "0.0.0.0"), ("PGWORLD_ALLOW_UNAUTHENTICATED", "1")],
        vec![],
        vec![("PGWORLD_API_TOKENS", "1"), ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4")],
        vec![("PGWORLD_API_TOKENS", "1"), ("HOST", "0.0.0.0")],
    ] {
        let (code, stderr) = start(&env)?;
        ensure!(code == Some(2) && stderr.contains("connecting to the database"), "{env:?}: {code:?} {stderr}");
    }
    Ok(())
}
