//! Run attributes (spec/events.md §9): plaintext string pairs, spec ≥ 4 only.

use crate::error::{Code, WfError, WfResult};
use serde_json::{Map, Value};

pub const MAX_KEYS: usize = 64;
pub const MAX_KEY_UTF16: usize = 256;
pub const MAX_VALUE_BYTES: usize = 256;

fn invalid(msg: impl Into<String>) -> WfError {
    WfError::new(Code::AttributeInvalid, msg)
}

pub fn check_key(key: &str, allow_reserved: bool) -> WfResult<()> {
    let units = key.encode_utf16().count();
    if units == 0 {
        return Err(invalid("attribute key must not be empty"));
    }
    if units > MAX_KEY_UTF16 {
        return Err(invalid(format!("attribute key length exceeds limit {MAX_KEY_UTF16}")));
    }
    if key.starts_with('$') && !allow_reserved {
        return Err(invalid(format!("reserved attribute key: {key}")));
    }
    Ok(())
}

pub fn check_value(value: &str) -> WfResult<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(invalid(format!("attribute value exceeds {MAX_VALUE_BYTES} bytes")));
    }
    Ok(())
}

fn check_count(n: usize) -> WfResult<()> {
    if n > MAX_KEYS {
        return Err(invalid(format!("too many attributes (limit {MAX_KEYS})")));
    }
    Ok(())
}

/// Initial attributes of `run_created` / resilient `run_started`.
pub fn check_initial(attrs: &Map<String, Value>, allow_reserved: bool) -> WfResult<()> {
    check_count(attrs.len())?;
    for (k, v) in attrs {
        check_key(k, allow_reserved)?;
        match v {
            Value::String(s) => check_value(s)?,
            _ => return Err(invalid(format!("attribute value for {k} must be a string"))),
        }
    }
    Ok(())
}

/// One validated `attr_set` change: `None` deletes the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    pub value: Option<String>,
}

/// Validates an `attr_set` eventData object and returns its changes in order.
pub fn parse_attr_set(data: &Map<String, Value>) -> WfResult<Vec<Change>> {
    for k in data.keys() {
        if !matches!(k.as_str(), "changes" | "writer" | "allowReservedAttributes") {
            return Err(invalid(format!("unexpected field in attr_set eventData: {k}")));
        }
    }
    let allow_reserved = match data.get("allowReservedAttributes") {
        None => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(invalid("allowReservedAttributes must be true when present")),
    };
    check_writer(data.get("writer"))?;
    let changes = match data.get("changes") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_KEYS => a,
        Some(Value::Array(a)) if a.is_empty() => return Err(invalid("changes must not be empty")),
        Some(Value::Array(_)) => return Err(invalid(format!("too many attribute changes (limit {MAX_KEYS})"))),
        _ => return Err(invalid("changes must be an array of {key, value}")),
    };
    let mut out: Vec<Change> = Vec::with_capacity(changes.len());
    for c in changes {
        let obj = c.as_object().ok_or_else(|| invalid("each change must be an object {key, value}"))?;
        if obj.keys().any(|k| k != "key" && k != "value") {
            return Err(invalid("each change has only key and value"));
        }
        let key = obj.get("key").and_then(Value::as_str).ok_or_else(|| invalid("change key must be a string"))?;
        check_key(key, allow_reserved)?;
        let value = match obj.get("value") {
            Some(Value::String(s)) => {
                check_value(s)?;
                Some(s.clone())
            }
            Some(Value::Null) => None,
            _ => return Err(invalid(format!("change value for {key} must be a string or null"))),
        };
        if out.iter().any(|c| c.key == key) {
            return Err(invalid(format!("duplicate attribute key in changes: {key}")));
        }
        out.push(Change { key: key.to_owned(), value });
    }
    Ok(out)
}

fn check_writer(writer: Option<&Value>) -> WfResult<()> {
    let bad = || invalid("invalid attribute writer");
    let w = writer.and_then(Value::as_object).ok_or_else(bad)?;
    match w.get("type").and_then(Value::as_str) {
        Some("workflow") if w.len() == 1 => Ok(()),
        Some("step") if w.len() == 3 => {
            let step_ok = w.get("stepId").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
            let attempt_ok = w.get("attempt").and_then(Value::as_u64).is_some_and(|n| n >= 1);
            if step_ok && attempt_ok {
                Ok(())
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

/// Applies changes in order; the result may hold at most 64 keys.
pub fn apply(current: &Map<String, Value>, changes: &[Change]) -> WfResult<Map<String, Value>> {
    let mut next = current.clone();
    for c in changes {
        match &c.value {
            Some(v) => {
                next.insert(c.key.clone(), Value::String(v.clone()));
            }
            None => {
                next.remove(&c.key);
            }
        }
    }
    check_count(next.len())?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn msg(r: WfResult<impl std::fmt::Debug>) -> String {
        match r {
            Err(e) => {
                assert_eq!(e.code, Code::AttributeInvalid);
                e.message
            }
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
    }

    #[test]
    fn key_and_value_limits() {
        assert!(check_key(&"k".repeat(256), false).is_ok());
        assert_eq!(msg(check_key(&"k".repeat(257), false)), "attribute key length exceeds limit 256");
        // One astral character is two UTF-16 code units.
        assert!(check_key(&"😀".repeat(128), false).is_ok());
        assert!(check_key(&"😀".repeat(129), false).is_err());
        assert_eq!(msg(check_key("$x", false)), "reserved attribute key: $x");
        assert!(check_key("$x", true).is_ok());
        assert!(check_value(&"é".repeat(128)).is_ok());
        assert_eq!(msg(check_value(&"é".repeat(129))), "attribute value exceeds 256 bytes");
    }

    #[test]
    fn initial_attributes() {
        assert!(check_initial(&obj(json!({"a": "1"})), false).is_ok());
        assert!(check_initial(&obj(json!({"a": 1})), false).is_err());
        let many: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(msg(check_initial(&many, false)), "too many attributes (limit 64)");
    }

    #[test]
    fn attr_set_bodies() {
        let ok =
            obj(json!({"changes": [{"key": "a", "value": "1"}, {"key": "b", "value": null}], "writer": {"type": "workflow"}}));
        assert_eq!(parse_attr_set(&ok).map(|c| c.len()).ok(), Some(2));
        let step = obj(json!({"changes": [{"key": "a", "value": "1"}], "writer": {"type": "step", "stepId": "s", "attempt": 1}}));
        assert!(parse_attr_set(&step).is_ok());
        for (bad, want) in [
            (json!({"changes": [], "writer": {"type": "workflow"}}), "changes must not be empty"),
            (
                json!({"changes": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}], "writer": {"type": "workflow"}}),
                "duplicate attribute key in changes: a",
            ),
            (
                json!({"changes": [{"key": "a", "value": "1"}], "writer": {"type": "workflow", "x": 1}}),
                "invalid attribute writer",
            ),
            (
                json!({"changes": [{"key": "a", "value": "1"}], "writer": {"type": "step", "stepId": "", "attempt": 1}}),
                "invalid attribute writer",
            ),
            (
                json!({"changes": [{"key": "a", "value": "1"}], "writer": {"type": "step", "stepId": "s", "attempt": 0}}),
                "invalid attribute writer",
            ),
            (json!({"changes": [{"key": "a", "value": "1"}]}), "invalid attribute writer"),
            (json!({"changes": [{"key": "$a", "value": "1"}], "writer": {"type": "workflow"}}), "reserved attribute key: $a"),
            (
                json!({"changes": [{"key": "a", "value": 1}], "writer": {"type": "workflow"}}),
                "change value for a must be a string or null",
            ),
            (
                json!({"changes": [{"key": "a", "value": "1"}], "writer": {"type": "workflow"}, "extra": 1}),
                "unexpected field in attr_set eventData: extra",
            ),
            (
                json!({"changes": [{"key": "a", "value": "1"}], "writer": {"type": "workflow"}, "allowReservedAttributes": false}),
                "allowReservedAttributes must be true when present",
            ),
        ] {
            assert_eq!(msg(parse_attr_set(&obj(bad))), want);
        }
        let reserved = obj(
            json!({"changes": [{"key": "$a", "value": "1"}], "writer": {"type": "workflow"}, "allowReservedAttributes": true}),
        );
        assert!(parse_attr_set(&reserved).is_ok());
    }

    #[test]
    fn apply_sets_deletes_and_caps() {
        let cur = obj(json!({"a": "1", "b": "2"}));
        let next = apply(&cur, &[Change { key: "a".into(), value: None }, Change { key: "c".into(), value: Some("3".into()) }]);
        assert_eq!(next.ok().map(Value::Object), Some(json!({"b": "2", "c": "3"})));
        let full: Map<String, Value> = (0..64).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(apply(&full, &[Change { key: "more".into(), value: Some("x".into()) }]).is_err());
        assert!(apply(&full, &[Change { key: "k1".into(), value: Some("x".into()) }]).is_ok());
    }
}
