//! NOTIFY wake-ups for dispatchers. Any role can LISTEN, and any role can take advisory locks, so
//! nothing here may name an app or a stream, and no lock a client can take may gate a ping.
//!
//! - `pgworld_queue` carries an empty payload. Committing a NOTIFY serializes on a database-wide
//!   lock, so concurrent enqueuers share pings: a transaction skips its own while another one
//!   that will ping is still open, holding the `notify_gate` row until its commit. Client roles
//!   have no privilege on that table, so they cannot hold it. A skipped ping costs latency at most,
//!   never a message: dispatchers also poll, and a busy queue pings constantly.
//! - `pgworld_stream` carries `stream_channel(app, name)`, a keyed hash (HKDF-SHA256) under a key
//!   only pgworld reads, which a live reader learns from `stream_state` and no one else can link
//!   to a stream.
//!
//! A library newer than the database's schema (before `ALTER EXTENSION pgworld UPDATE`) pings the
//! way 0.2.0 did.

use crate::db::{self, Row};
use crate::guc;
use pgrx::spi::SpiClient;
use std::cell::RefCell;

thread_local! {
    // The stream key, read once per backend; None until the 0.3.0 schema is there.
    static STREAM_KEY: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

fn stream_key(c: &SpiClient<'_>) -> Option<Vec<u8>> {
    if let Some(key) = STREAM_KEY.with(|k| k.borrow().clone()) {
        return Some(key);
    }
    if !db::exists(c, "SELECT 1 WHERE pg_catalog.to_regclass('workflow.notify_gate') IS NOT NULL", &[]) {
        return None;
    }
    let key = db::select(c, "SELECT stream_key FROM workflow.notify_gate", &[]).next().and_then(|r| r.opt_bytes(1))?;
    STREAM_KEY.with(|k| *k.borrow_mut() = Some(key.clone()));
    Some(key)
}

/// What a `pgworld_stream` ping for this stream carries, and what its live readers wait for.
pub fn stream_channel(c: &SpiClient<'_>, app: i32, name: &str) -> String {
    match stream_key(c) {
        Some(key) => pgworld_core::keys::stream_channel(&key, app, name),
        None => format!("{app}:{name}"),
    }
}

/// A ping on `pgworld_queue`, delivered at commit and folded with others of the transaction.
pub fn queue(c: &mut SpiClient<'_>) {
    if !guc::NOTIFY.get() {
        return;
    }
    let sql = if stream_key(c).is_some() {
        "SELECT pg_catalog.pg_notify('pgworld_queue', '') FROM (SELECT 1 FROM workflow.notify_gate FOR UPDATE SKIP LOCKED) AS gate"
    } else {
        "SELECT pg_catalog.pg_notify('pgworld_queue', '')"
    };
    db::update(c, sql, &[]);
}

/// A ping on `pgworld_stream` for a write or close of this stream.
pub fn stream(c: &mut SpiClient<'_>, app: i32, name: &str) {
    if guc::NOTIFY.get() {
        let channel = stream_channel(c, app, name);
        db::update(c, "SELECT pg_catalog.pg_notify('pgworld_stream', $1)", &[channel.into()]);
    }
}
