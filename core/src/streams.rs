//! Stream write bodies (spec/streams.md §2): which bytes a `PUT` stores, decided without storage.

use crate::error::{WfError, WfResult};
use base64::{engine::general_purpose, Engine};
use serde_json::Value;

fn invalid() -> WfError {
    WfError::bad_request("invalid stream chunk")
}

/// Base64 with the standard alphabet, padding optional.
fn decode_base64(s: &str) -> WfResult<Vec<u8>> {
    let trimmed = s.trim_end_matches('=');
    general_purpose::STANDARD_NO_PAD.decode(trimmed).map_err(|_| WfError::bad_request("invalid base64 in stream chunk"))
}

/// One element of a multi write, or the body of a single JSON write.
fn chunk(v: &Value) -> WfResult<Vec<u8>> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(m) => match m.get("data") {
            Some(Value::String(data)) if m.get("type").and_then(Value::as_str) == Some("string") => Ok(data.as_bytes().to_vec()),
            Some(Value::String(data)) => decode_base64(data),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

/// The chunks a JSON `PUT` writes: one, or an array's worth with `x-stream-multi`.
pub fn json_chunks(body: &Value, multi: bool) -> WfResult<Vec<Vec<u8>>> {
    if multi {
        let Value::Array(items) = body else {
            return Err(WfError::bad_request("body must be an array for multi-write"));
        };
        items.iter().map(chunk).collect()
    } else {
        Ok(vec![chunk(body)?])
    }
}

pub const MAX_STREAM_NAME_CHARS: usize = 512;

pub fn check_name(name: &str) -> WfResult<()> {
    let n = name.chars().count();
    if n == 0 || n > MAX_STREAM_NAME_CHARS {
        return Err(WfError::bad_request(format!("stream name must be 1 to {MAX_STREAM_NAME_CHARS} characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_and_multi_writes_follow_the_table() {
        assert_eq!(json_chunks(&json!({"data": "aGk="}), false), Ok(vec![b"hi".to_vec()]));
        assert_eq!(json_chunks(&json!({"data": "aGk"}), false), Ok(vec![b"hi".to_vec()]), "padding optional");
        assert_eq!(json_chunks(&json!({"data": "hi there", "type": "string"}), false), Ok(vec![b"hi there".to_vec()]));
        assert_eq!(json_chunks(&json!("plain"), false), Ok(vec![b"plain".to_vec()]));
        assert_eq!(
            json_chunks(&json!(["a", {"data": "b", "type": "string"}, {"data": "Yw=="}]), true),
            Ok(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
        );
        assert_eq!(json_chunks(&json!([]), true), Ok(vec![]));
        assert_eq!(json_chunks(&json!({"data": 5}), false).map_err(|e| e.message), Err("invalid stream chunk".into()));
        assert_eq!(json_chunks(&json!(["a", 1]), true).map_err(|e| e.message), Err("invalid stream chunk".into()));
        assert_eq!(
            json_chunks(&json!({"x": 1}), true).map_err(|e| e.message),
            Err("body must be an array for multi-write".into())
        );
        assert!(json_chunks(&json!({"data": "!!"}), false).is_err());
    }
}
