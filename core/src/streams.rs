//! Stream write bodies (spec/streams.md §2) and the run template (http-api.md §4.4): rules the
//! extension applies without looking at storage.

use crate::error::{WfError, WfResult};
use base64::{engine::general_purpose, Engine};
use serde_json::{json, Map, Value};

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

/// A step of the template's source run: name and times in microseconds.
#[derive(Debug, Clone)]
pub struct TemplateStep {
    pub name: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// Orders the source run's steps (creation order) into sequential orders and parallel groups.
pub fn template_steps(steps: &[TemplateStep]) -> Vec<Value> {
    let mut out: Vec<Map<String, Value>> = Vec::with_capacity(steps.len());
    let (mut order, mut group, mut horizon) = (1i64, 1i64, i64::MIN);
    for (i, s) in steps.iter().enumerate() {
        let start = s.started_at.unwrap_or(s.created_at);
        let end = s.completed_at.or(s.started_at).unwrap_or(s.created_at);
        let mut item = Map::new();
        item.insert("stepName".into(), json!(s.name));
        if i > 0 && start < horizon {
            item.insert("order".into(), json!(order));
            item.insert("parallelGroup".into(), json!(group));
            if let Some(prev) = out.last_mut() {
                prev.insert("parallelGroup".into(), json!(group));
            }
        } else {
            if i > 0 {
                order += 1;
                group += 1;
            }
            item.insert("order".into(), json!(order));
        }
        horizon = horizon.max(end);
        out.push(item);
    }
    out.into_iter().map(Value::Object).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn template_groups_overlapping_steps() {
        let s = |name: &str, start: i64, end: i64| TemplateStep {
            name: name.into(),
            created_at: start,
            started_at: Some(start),
            completed_at: Some(end),
        };
        let got = template_steps(&[s("a", 0, 10), s("b", 20, 30), s("c", 25, 40), s("d", 50, 60)]);
        assert_eq!(
            got,
            vec![
                json!({"stepName": "a", "order": 1}),
                json!({"stepName": "b", "order": 2, "parallelGroup": 2}),
                json!({"stepName": "c", "order": 2, "parallelGroup": 2}),
                json!({"stepName": "d", "order": 3}),
            ]
        );
        assert_eq!(template_steps(&[]), Vec::<Value>::new());
    }
}
