//! pgworld: durable-workflow state for the Workflow DevKit inside PostgreSQL 17.
//!
//! The rules live in `pgworld_core` (pure Rust). This crate reads state through SPI, applies the
//! rules' plans and exposes one SQL function per API route, as `pgworld_core::api` declares it:
//! the `_name` functions in externs.rs are generated from that declaration and call api.rs; the
//! few with other shapes sit next to their logic. Each returns its response or an error
//! envelope; its public `workflow.name` wrapper (sql/functions.sql) raises the envelope as the
//! `WFnnn` SQLSTATE, which pgrx cannot raise itself.

use pgrx::prelude::*;
use pgrx::JsonB;

mod active_runs;
mod api;
mod claim;
mod db;
mod dispatch;
mod entities;
mod event_writes;
mod events;
mod externs;
mod facts;
mod ffi;
mod guc;
mod keys;
mod maint;
mod messages;
mod pings;
mod pods;
mod queue;
mod quotas;
mod reads;
mod reply;
mod retention;
mod runs;
mod shmem;
mod starts;
mod streams;
mod tenancy;
mod tokens;
mod versions;

::pgrx::pg_module_magic!();

extension_sql_file!("../../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../../sql/operate.sql", name = "operate", requires = ["schema"]);
extension_sql_file!("../../sql/functions.sql", name = "functions", requires = ["operate"]);
extension_sql_file!("../../sql/api.sql", name = "api", finalize);

/// pgworld's tables in shared memory (when preloaded).
static SHARED: [&dyn shmem::Shared; 2] = [&pods::SLOTS, &active_runs::COUNTS];

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::init();
    shmem::init(&SHARED);
}

/// Creates an app without the admin check: only the install script calls it (for `default`).
#[pg_extern(volatile, parallel_unsafe, name = "_app_create")]
fn app_create(label: &str) -> JsonB {
    reply::respond(api::app_create(label))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // The per-pod limits live in shared memory, which only a preloaded library gets.
        vec!["shared_preload_libraries = 'pgworld'"]
    }
}
