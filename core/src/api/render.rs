//! The files that follow from [`super::FUNCTIONS`]: SQL wrappers, their grants, the `pg_extern`s.

use super::{Arg, Function, Returns, Ty, Volatility, FUNCTIONS};

/// Where the generated grants sit inside `sql/api.sql` (after ownership is settled there).
pub const GRANTS_BEGIN: &str = "-- BEGIN GENERATED GRANTS (pgworld_core::api; PGWORLD_BLESS=1 cargo test -p pgworld-core api)\n";
pub const GRANTS_END: &str = "-- END GENERATED GRANTS\n";

fn sql_name(name: &str) -> String {
    // The one argument name that is a reserved word.
    if name == "limit" {
        format!("\"{name}\"")
    } else {
        name.to_owned()
    }
}

fn signature(f: &Function) -> String {
    f.args
        .iter()
        .map(|a| match a.default {
            Some(d) => format!("{} {} DEFAULT {d}", sql_name(a.name), a.ty.sql()),
            None => format!("{} {}", sql_name(a.name), a.ty.sql()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn identity(f: &Function) -> String {
    let types: Vec<&str> = f.args.iter().map(|a| a.ty.sql()).collect();
    format!("{}({})", f.name, types.join(", "))
}

/// The wrapper passes jsonb on as text: the Rust side parses it, so a document serde cannot take
/// is the caller's error rather than an internal one.
fn call(f: &Function) -> String {
    let args: Vec<String> =
        f.args.iter().map(|a| if a.ty == Ty::Jsonb { format!("{}::text", sql_name(a.name)) } else { sql_name(a.name) }).collect();
    format!("workflow._{}({})", f.name, args.join(", "))
}

fn wrapper(f: &Function) -> String {
    let volatility = match f.volatility {
        Volatility::Volatile => "VOLATILE",
        Volatility::Stable => "STABLE",
    };
    let (returns, answer) = match f.returns {
        Returns::Json => ("RETURNS jsonb".to_owned(), format!("RETURN workflow._ok({});", call(f))),
        Returns::JsonBool => ("RETURNS boolean".to_owned(), format!("RETURN workflow._ok({})::boolean;", call(f))),
        Returns::Plain(t) => (format!("RETURNS {t}"), format!("RETURN {};", call(f))),
        Returns::Table(cols) => (format!("\nRETURNS TABLE ({cols})"), format!("RETURN QUERY SELECT * FROM {};", call(f))),
    };
    let body = match f.guard {
        None => format!("$$ BEGIN {answer} END $$"),
        Some(guard) => format!("$$\nBEGIN\n  {guard}\n  {answer}\nEND\n$$"),
    };
    let space = if returns.starts_with('\n') { "" } else { " " };
    format!(
        "CREATE FUNCTION {}({}){space}{returns}\nLANGUAGE plpgsql {volatility} SECURITY DEFINER SET search_path = pg_catalog, pg_temp\nAS {body};\n",
        f.name,
        signature(f)
    )
}

/// `sql/functions.sql`: every wrapper. Each runs as pgworld_owner (SECURITY DEFINER), so its
/// queries are subject to the tenant policies, and raises WFnnn errors through `_ok`.
pub fn functions_sql() -> String {
    let mut out = String::from(
        "-- Generated from pgworld_core::api (core/src/api.rs) by its tests; edit the declaration, then\n\
         -- PGWORLD_BLESS=1 cargo test -p pgworld-core api. One public function per Rust `_name` function.\n\
         -- They are plpgsql, not SQL-language, because plpgsql keeps its plans for the session while a\n\
         -- non-inlinable SQL function is re-planned on every call. Privileges: sql/api.sql.\n",
    );
    for f in FUNCTIONS {
        out.push('\n');
        out.push_str(&wrapper(f));
    }
    out
}

/// The grant lines between [`GRANTS_BEGIN`] and [`GRANTS_END`] in `sql/api.sql`.
pub fn grants_sql() -> String {
    let mut out = String::new();
    for f in FUNCTIONS.iter().filter(|f| !f.grants.is_empty()) {
        let roles: Vec<&str> = f.grants.iter().map(|r| r.sql()).collect();
        out.push_str(&format!("GRANT EXECUTE ON FUNCTION {} TO {};\n", identity(f), roles.join(", ")));
    }
    out
}

/// `sql/api.sql` with its generated region replaced; None when the markers are missing.
pub fn with_grants(api_sql: &str) -> Option<String> {
    let start = api_sql.find(GRANTS_BEGIN)? + GRANTS_BEGIN.len();
    let end = api_sql[start..].find(GRANTS_END)? + start;
    Some(format!("{}{}{}", &api_sql[..start], grants_sql(), &api_sql[end..]))
}

/// The Rust parameter type of a generated extern's argument; None for a type generated externs
/// do not take (a test holds the table to text, jsonb and bytea).
pub fn rust_type(a: &Arg, takes_nulls: bool) -> Option<&'static str> {
    Some(match (a.ty, takes_nulls) {
        (Ty::Text | Ty::Jsonb, false) => "&str",
        (Ty::Text | Ty::Jsonb, true) => "Option<&str>",
        (Ty::Bytea, false) => "&[u8]",
        (Ty::Bytea, true) => "Option<&[u8]>",
        _ => return None,
    })
}

/// The JSON a NULL jsonb argument stands for: its SQL default, `null` without one.
fn null_json(a: &Arg) -> &'static str {
    match a.default {
        Some("'{}'") => "{}",
        Some("'[]'") => "[]",
        _ => "null",
    }
}

fn extern_fn(f: &Function) -> String {
    let (volatility, parallel) = match f.volatility {
        Volatility::Volatile => ("volatile", "parallel_unsafe"),
        Volatility::Stable => ("stable", "parallel_safe"),
    };
    let params: Vec<String> =
        f.args.iter().map(|a| format!("{}: {}", a.name, rust_type(a, f.takes_nulls).unwrap_or("()"))).collect();
    let mut parse = String::new();
    let mut pass = Vec::new();
    for a in f.args {
        if a.ty == Ty::Jsonb {
            let text = if f.takes_nulls { format!("{}.unwrap_or({:?})", a.name, null_json(a)) } else { a.name.to_owned() };
            parse.push_str(&format!("        let {0} = arg({0:?}, {text})?;\n", a.name));
            pass.push(format!("&{}", a.name));
        } else {
            pass.push(a.name.to_owned());
        }
    }
    let call = format!("api::{}({})", f.name, pass.join(", "));
    let body = if parse.is_empty() {
        format!("    respond({call})\n")
    } else {
        format!("    answer(|| {{\n{parse}        {call}\n    }})\n")
    };
    format!(
        "#[pg_extern({volatility}, {parallel}, name = \"_{name}\")]\nfn {name}({params}) -> JsonB {{\n{body}}}\n",
        name = f.name,
        params = params.join(", "),
    )
}

/// `extension/src/externs.rs`: the `pg_extern` of every generated function.
pub fn externs_rs() -> String {
    let mut out = String::from(
        "//! Generated from pgworld_core::api (core/src/api.rs) by its tests; do not edit. Each function\n\
         //! parses its jsonb arguments (text on the wire, see sql/functions.sql), calls its\n\
         //! implementation in `api.rs` and answers the result or an error envelope.\n\n\
         use crate::api;\nuse crate::reply::{answer, arg, respond};\nuse pgrx::prelude::*;\nuse pgrx::JsonB;\n",
    );
    for f in FUNCTIONS.iter().filter(|f| f.generated) {
        out.push('\n');
        out.push_str(&extern_fn(f));
    }
    out
}
