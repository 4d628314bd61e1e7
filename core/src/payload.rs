//! Byte payloads kept lossless (spec/http-api.md §1.6).
//!
//! A stored payload is either bytes or a JSON value. In `jsonb` we store bytes as
//! `{"$bytes": "<base64>"}`; a JSON value that would read back as a tag (an object whose only key
//! is `$bytes` or `$json`) is escaped as `{"$json": <value>}`. Every other value is stored as is,
//! so psql shows ordinary JSON payloads unchanged.

use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{json, Map, Value};

/// Wire encoding selected per request (`"$payload": "envelope"` in `query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// What the Platformatic client speaks: bytes travel as canonical base64 strings.
    #[default]
    Compat,
    /// `{"__type":"Uint8Array","data":"<base64>"}` for bytes; unambiguous.
    Envelope,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Bytes(Vec<u8>),
    Json(Value),
}

/// Payload fields inside `eventData` (any event type).
pub const EVENT_DATA_PAYLOAD_FIELDS: [&str; 6] = ["input", "output", "result", "payload", "metadata", "error"];

fn canonical_base64(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() {
        return None;
    }
    let bytes = STANDARD.decode(s).ok()?;
    (STANDARD.encode(&bytes) == s).then_some(bytes)
}

fn single_key(m: &Map<String, Value>) -> Option<(&str, &Value)> {
    if m.len() == 1 {
        m.iter().next().map(|(k, v)| (k.as_str(), v))
    } else {
        None
    }
}

impl Payload {
    /// Reads a payload from the wire. Envelope mode rejects a malformed Uint8Array envelope.
    pub fn from_wire(v: Value, mode: Mode) -> Result<Payload, String> {
        match mode {
            Mode::Compat => match &v {
                Value::String(s) => Ok(canonical_base64(s).map_or(Payload::Json(v), Payload::Bytes)),
                _ => Ok(Payload::Json(v)),
            },
            Mode::Envelope => {
                if let Value::Object(m) = &v {
                    if m.get("__type").and_then(Value::as_str) == Some("Uint8Array") {
                        let data =
                            m.get("data").and_then(Value::as_str).ok_or("Uint8Array payload needs a base64 data string")?;
                        let bytes = STANDARD.decode(data).map_err(|_| "Uint8Array payload data is not valid base64")?;
                        return Ok(Payload::Bytes(bytes));
                    }
                }
                Ok(Payload::Json(v))
            }
        }
    }

    pub fn to_wire(&self, mode: Mode) -> Value {
        match (self, mode) {
            (Payload::Bytes(b), Mode::Compat) => Value::String(STANDARD.encode(b)),
            (Payload::Bytes(b), Mode::Envelope) => {
                json!({"__type": "Uint8Array", "data": STANDARD.encode(b)})
            }
            (Payload::Json(v), _) => v.clone(),
        }
    }

    pub fn to_stored(&self) -> Value {
        match self {
            Payload::Bytes(b) => json!({"$bytes": STANDARD.encode(b)}),
            Payload::Json(v) => match v {
                Value::Object(m) if matches!(single_key(m), Some(("$bytes" | "$json", _))) => {
                    json!({"$json": v})
                }
                _ => v.clone(),
            },
        }
    }

    pub fn from_stored(v: &Value) -> Payload {
        if let Value::Object(m) = v {
            match single_key(m) {
                Some(("$bytes", Value::String(s))) => {
                    if let Ok(b) = STANDARD.decode(s) {
                        return Payload::Bytes(b);
                    }
                }
                Some(("$json", inner)) => return Payload::Json(inner.clone()),
                _ => {}
            }
        }
        Payload::Json(v.clone())
    }
}

/// Converts a stored payload straight to its wire form without decoding bytes.
pub fn stored_to_wire(v: &Value, mode: Mode) -> Value {
    if let Value::Object(m) = v {
        match single_key(m) {
            Some(("$bytes", Value::String(s))) => {
                return match mode {
                    Mode::Compat => Value::String(s.clone()),
                    Mode::Envelope => json!({"__type": "Uint8Array", "data": s}),
                }
            }
            Some(("$json", inner)) => return inner.clone(),
            _ => {}
        }
    }
    v.clone()
}

/// Converts the payload fields of an `eventData` object from wire to stored form in place.
pub fn event_data_from_wire(data: &mut Map<String, Value>, mode: Mode) -> Result<(), String> {
    for field in EVENT_DATA_PAYLOAD_FIELDS {
        if let Some(v) = data.get_mut(field) {
            *v = Payload::from_wire(v.take(), mode)?.to_stored();
        }
    }
    Ok(())
}

/// Converts the payload fields of a stored `eventData` object to wire form in place.
pub fn event_data_to_wire(data: &mut Map<String, Value>, mode: Mode) {
    for field in EVENT_DATA_PAYLOAD_FIELDS {
        if let Some(v) = data.get_mut(field) {
            *v = stored_to_wire(v, mode);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_mode_decodes_only_canonical_base64() {
        assert_eq!(Payload::from_wire(json!("ZGV2bAE="), Mode::Compat), Ok(Payload::Bytes(b"devl\x01".to_vec())));
        // Platformatic's quirk: a word that is valid base64 becomes bytes.
        assert_eq!(Payload::from_wire(json!("test"), Mode::Compat), Ok(Payload::Bytes(vec![0xb5, 0xeb, 0x2d])));
        for not_b64 in [json!(""), json!("ZGV2bAE"), json!("hello world"), json!({"a": 1}), json!(5), json!(null)] {
            assert_eq!(Payload::from_wire(not_b64.clone(), Mode::Compat), Ok(Payload::Json(not_b64)));
        }
    }

    #[test]
    fn envelope_mode_is_unambiguous() {
        let env = json!({"__type": "Uint8Array", "data": "AAEC"});
        assert_eq!(Payload::from_wire(env.clone(), Mode::Envelope), Ok(Payload::Bytes(vec![0, 1, 2])));
        assert_eq!(Payload::from_wire(json!("test"), Mode::Envelope), Ok(Payload::Json(json!("test"))));
        assert!(Payload::from_wire(json!({"__type": "Uint8Array", "data": "!!"}), Mode::Envelope).is_err());
        assert_eq!(Payload::Bytes(vec![0, 1, 2]).to_wire(Mode::Envelope), env);
        assert_eq!(Payload::Bytes(vec![0, 1, 2]).to_wire(Mode::Compat), json!("AAEC"));
    }

    #[test]
    fn stored_form_round_trips_everything() {
        let cases = [
            Payload::Bytes(vec![]),
            Payload::Bytes((0..=255).collect()),
            Payload::Json(json!(null)),
            Payload::Json(json!("AAEC")),
            Payload::Json(json!({"$bytes": "AAEC"})),
            Payload::Json(json!({"$json": 1})),
            Payload::Json(json!({"$bytes": "AAEC", "other": 1})),
            Payload::Json(json!([1, {"$bytes": "x"}])),
        ];
        for p in cases {
            let stored = p.to_stored();
            assert_eq!(Payload::from_stored(&stored), p, "{stored}");
            assert_eq!(stored_to_wire(&stored, Mode::Envelope), p.to_wire(Mode::Envelope));
            assert_eq!(stored_to_wire(&stored, Mode::Compat), p.to_wire(Mode::Compat));
        }
    }

    #[test]
    fn event_data_fields_convert_in_place() {
        let mut data = json!({"input": {"__type": "Uint8Array", "data": "AAEC"}, "stepName": "AAEC"});
        let m = data.as_object_mut().expect("object");
        event_data_from_wire(m, Mode::Envelope).expect("valid");
        assert_eq!(m["input"], json!({"$bytes": "AAEC"}));
        assert_eq!(m["stepName"], json!("AAEC"));
        event_data_to_wire(m, Mode::Compat);
        assert_eq!(m["input"], json!("AAEC"));
    }
}
