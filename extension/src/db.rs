//! SPI access: cached prepared plans, typed row reads, and the one way internal faults surface.
//! Internal faults (a broken plan, a type mismatch) are PostgreSQL errors, never WF errors.

use crate::ffi::PG_EPOCH_OFFSET_MICROS;
use pgrx::datum::{DatumWithOid, JsonB, TimestampWithTimeZone};
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiHeapTupleData, SpiTupleTable};
use pgrx::PgOid;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;
use std::rc::Rc;

pub trait OrInternal<T> {
    fn or_internal(self, what: &str) -> T;
}

impl<T, E: Display> OrInternal<T> for Result<T, E> {
    fn or_internal(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => pgrx::error!("pgworld internal error ({what}): {e}"),
        }
    }
}

thread_local! {
    // Plans live for the backend's life (SPI_keepplan); PostgreSQL re-plans them when the schema changes.
    static PLANS: RefCell<HashMap<String, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

fn plan_for(c: &SpiClient<'_>, sql: &str, args: &[DatumWithOid<'_>], mutating: bool) -> Rc<OwnedPreparedStatement> {
    if let Some(p) = PLANS.with(|m| m.borrow().get(sql).cloned()) {
        return p;
    }
    let oids: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
    let prepared = if mutating { c.prepare_mut(sql, &oids) } else { c.prepare(sql, &oids) };
    let plan = Rc::new(prepared.or_internal(sql).keep());
    PLANS.with(|m| m.borrow_mut().insert(sql.to_owned(), Rc::clone(&plan)));
    plan
}

/// Runs a read-only statement through a cached plan. Argument types fix the plan's parameter types.
pub fn select<'c>(c: &SpiClient<'c>, sql: &str, args: &[DatumWithOid<'_>]) -> SpiTupleTable<'c> {
    let plan = plan_for(c, sql, args, false);
    c.select(&*plan, None, args).or_internal(sql)
}

/// Runs a writing (or row-locking) statement through a cached plan.
pub fn update<'c>(c: &mut SpiClient<'c>, sql: &str, args: &[DatumWithOid<'_>]) -> SpiTupleTable<'c> {
    let plan = plan_for(c, sql, args, true);
    c.update(&*plan, None, args).or_internal(sql)
}

/// Writes that run as one statement: each part becomes a data-modifying `WITH` item ahead of
/// the last, which is the statement itself (and the only one whose rows come back). Every part
/// numbers its parameters from `$1`; they are renumbered here. The parts see one snapshot and
/// none sees another's rows, so they must touch different rows.
#[derive(Default)]
pub struct Writes<'a> {
    parts: Vec<String>,
    args: Vec<DatumWithOid<'a>>,
}

impl<'a> Writes<'a> {
    pub fn add(&mut self, sql: &str, args: Vec<DatumWithOid<'a>>) {
        self.parts.push(pgworld_core::sql_text::renumber(sql, self.args.len()));
        self.args.extend(args);
    }

    /// Runs the parts; the rows are the last part's.
    pub fn run<'c>(mut self, c: &mut SpiClient<'c>) -> Option<SpiTupleTable<'c>> {
        let last = self.parts.pop()?;
        let mut sql = String::new();
        for (i, part) in self.parts.iter().enumerate() {
            sql.push_str(if i == 0 { "WITH " } else { ", " });
            sql.push_str(&format!("w{i} AS ({part})"));
        }
        if !sql.is_empty() {
            sql.push(' ');
        }
        sql.push_str(&last);
        Some(update(c, &sql, &self.args))
    }
}

/// True when a read-only statement returns at least one row.
pub fn exists(c: &SpiClient<'_>, sql: &str, args: &[DatumWithOid<'_>]) -> bool {
    !select(c, sql, args).is_empty()
}

/// True when a writing statement (with RETURNING) touched at least one row.
pub fn update_any(c: &mut SpiClient<'_>, sql: &str, args: &[DatumWithOid<'_>]) -> bool {
    !update(c, sql, args).is_empty()
}

pub fn ts_datum(micros: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(micros - PG_EPOCH_OFFSET_MICROS).or_internal("timestamp out of range")
}

pub fn opt_ts_datum(micros: Option<i64>) -> Option<TimestampWithTimeZone> {
    micros.map(ts_datum)
}

pub fn json_datum(v: &Option<Value>) -> Option<JsonB> {
    v.clone().map(JsonB)
}

/// Typed column reads by 1-based ordinal. The plain readers are for columns that cannot be NULL
/// (NOT NULL, count(*), an expression over those): a NULL there is a fault, reported with the
/// column, never turned into a default. `opt_*` readers are for columns where NULL means
/// something.
pub trait Row {
    fn text(&self, i: usize) -> String;
    fn opt_text(&self, i: usize) -> Option<String>;
    fn int(&self, i: usize) -> i32;
    fn bigint(&self, i: usize) -> i64;
    fn opt_int(&self, i: usize) -> Option<i32>;
    fn opt_bigint(&self, i: usize) -> Option<i64>;
    fn flag(&self, i: usize) -> bool;
    fn bytes(&self, i: usize) -> Vec<u8>;
    fn opt_bytes(&self, i: usize) -> Option<Vec<u8>>;
    fn uuid(&self, i: usize) -> pgrx::Uuid;
    fn opt_uuid(&self, i: usize) -> Option<pgrx::Uuid>;
    fn opt_bool(&self, i: usize) -> Option<bool>;
    fn json(&self, i: usize) -> Option<Value>;
    fn ts(&self, i: usize) -> Option<i64>;
    /// A timestamp column that cannot be NULL, in Unix microseconds.
    fn at(&self, i: usize) -> i64;
}

fn required<T>(v: Option<T>, what: &str, i: usize) -> T {
    match v {
        Some(v) => v,
        None => pgrx::error!("pgworld internal error: unexpected NULL in {what} column {i}"),
    }
}

impl Row for SpiHeapTupleData<'_> {
    fn text(&self, i: usize) -> String {
        required(self.opt_text(i), "text", i)
    }
    fn opt_text(&self, i: usize) -> Option<String> {
        self.get::<String>(i).or_internal("text column")
    }
    fn int(&self, i: usize) -> i32 {
        required(self.opt_int(i), "integer", i)
    }
    fn bigint(&self, i: usize) -> i64 {
        required(self.opt_bigint(i), "bigint", i)
    }
    fn opt_int(&self, i: usize) -> Option<i32> {
        self.get::<i32>(i).or_internal("integer column")
    }
    fn opt_bigint(&self, i: usize) -> Option<i64> {
        self.get::<i64>(i).or_internal("bigint column")
    }
    fn bytes(&self, i: usize) -> Vec<u8> {
        required(self.opt_bytes(i), "bytea", i)
    }
    fn opt_bytes(&self, i: usize) -> Option<Vec<u8>> {
        self.get::<Vec<u8>>(i).or_internal("bytea column")
    }
    fn uuid(&self, i: usize) -> pgrx::Uuid {
        required(self.opt_uuid(i), "uuid", i)
    }
    fn opt_uuid(&self, i: usize) -> Option<pgrx::Uuid> {
        self.get::<pgrx::Uuid>(i).or_internal("uuid column")
    }
    fn flag(&self, i: usize) -> bool {
        required(self.opt_bool(i), "boolean", i)
    }
    fn opt_bool(&self, i: usize) -> Option<bool> {
        self.get::<bool>(i).or_internal("boolean column")
    }
    fn json(&self, i: usize) -> Option<Value> {
        self.get::<JsonB>(i).or_internal("jsonb column").map(|j| j.0)
    }
    fn ts(&self, i: usize) -> Option<i64> {
        self.get::<TimestampWithTimeZone>(i).or_internal("timestamptz column").map(|t| t.into_inner() + PG_EPOCH_OFFSET_MICROS)
    }
    fn at(&self, i: usize) -> i64 {
        required(self.ts(i), "timestamptz", i)
    }
}

/// A row read from column `offset + 1` on: the entity readers of a statement that returns two
/// entities side by side.
pub struct Shifted<'r, R: Row>(pub &'r R, pub usize);

impl<R: Row> Row for Shifted<'_, R> {
    fn text(&self, i: usize) -> String {
        self.0.text(i + self.1)
    }
    fn opt_text(&self, i: usize) -> Option<String> {
        self.0.opt_text(i + self.1)
    }
    fn int(&self, i: usize) -> i32 {
        self.0.int(i + self.1)
    }
    fn bigint(&self, i: usize) -> i64 {
        self.0.bigint(i + self.1)
    }
    fn opt_int(&self, i: usize) -> Option<i32> {
        self.0.opt_int(i + self.1)
    }
    fn opt_bigint(&self, i: usize) -> Option<i64> {
        self.0.opt_bigint(i + self.1)
    }
    fn flag(&self, i: usize) -> bool {
        self.0.flag(i + self.1)
    }
    fn bytes(&self, i: usize) -> Vec<u8> {
        self.0.bytes(i + self.1)
    }
    fn opt_bytes(&self, i: usize) -> Option<Vec<u8>> {
        self.0.opt_bytes(i + self.1)
    }
    fn uuid(&self, i: usize) -> pgrx::Uuid {
        self.0.uuid(i + self.1)
    }
    fn opt_uuid(&self, i: usize) -> Option<pgrx::Uuid> {
        self.0.opt_uuid(i + self.1)
    }
    fn opt_bool(&self, i: usize) -> Option<bool> {
        self.0.opt_bool(i + self.1)
    }
    fn json(&self, i: usize) -> Option<Value> {
        self.0.json(i + self.1)
    }
    fn ts(&self, i: usize) -> Option<i64> {
        self.0.ts(i + self.1)
    }
    fn at(&self, i: usize) -> i64 {
        self.0.at(i + self.1)
    }
}
