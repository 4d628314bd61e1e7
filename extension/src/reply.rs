//! How a Rust `_name` function answers its SQL wrapper: the response, or an error envelope the
//! wrapper raises as its WFnnn SQLSTATE; and how it reads the jsonb arguments it gets as text.

use pgrx::JsonB;
use pgworld_core::{WfError, WfResult};
use serde_json::Value;

/// The response, or `{"$error": …}` for the wrapper to raise.
pub fn respond(result: WfResult<Value>) -> JsonB {
    JsonB(result.unwrap_or_else(|e| e.to_envelope()))
}

/// Runs a call that parses its arguments first, answering as [`respond`] does.
pub fn answer(call: impl FnOnce() -> WfResult<Value>) -> JsonB {
    respond(call())
}

/// JSON arguments arrive as text (the wrappers cast them) so that a document serde cannot take,
/// such as one nested deeper than 128 levels, is the caller's 400 rather than an internal error.
pub fn arg(what: &str, text: &str) -> WfResult<Value> {
    serde_json::from_str(text).map_err(|e| WfError::bad_request(format!("{what} is not acceptable JSON: {e}")))
}
