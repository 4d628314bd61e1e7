//! The real binary against the real test cluster: it starts, answers /status and /ready, and
//! refuses a bad configuration with a clear message.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(3999)
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()))
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(url: &str, port: u16) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_pgworld-dispatcher"))
        .args([url, "--host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the dispatcher binary starts");
    Running(child)
}

fn wait_for(port: u16, path: &str) -> Option<(u16, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(r) = get(port, path) {
            return Some(r);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn cluster_db(db: &str) -> String {
    let url = std::env::var("PGWORLD_TEST_URL").expect("PGWORLD_TEST_URL is set by ./pgw test");
    let base = url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(url);
    format!("{base}/{db}")
}

#[test]
fn serves_status_and_ready_against_a_database_with_the_extension() {
    let port = free_port();
    let _d = start(&cluster_db("pgworld_template"), port);
    assert_eq!(wait_for(port, "/status"), Some((200, r#"{"status":"ok"}"#.into())));
    assert_eq!(get(port, "/ready"), Some((200, r#"{"status":"ok"}"#.into())));
}

#[test]
fn is_not_ready_without_the_extension() {
    let port = free_port();
    let _d = start(&cluster_db("postgres"), port);
    assert_eq!(wait_for(port, "/status").map(|r| r.0), Some(200));
    let (status, body) = get(port, "/ready").expect("answers");
    assert_eq!(status, 503);
    assert!(body.contains("extension pgworld is not installed"), "{body}");
}

#[test]
fn refuses_bad_configuration_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_pgworld-dispatcher")).args(["--port", "x"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let unreachable = Command::new(env!("CARGO_BIN_EXE_pgworld-dispatcher"))
        .args(["postgres://nobody@127.0.0.1:1/none", "--port", &free_port().to_string()])
        .output()
        .expect("runs");
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("connecting to the database"));
}
