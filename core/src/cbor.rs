//! Just enough CBOR (RFC 8949) for the queue: walk an envelope without re-encoding it, so the
//! `message` item's bytes reach the handler exactly as enqueued (queue.md §4), read the few
//! fields pgworld needs, and write the delivery body around the stored bytes.

use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{Map, Number, Value};
use std::ops::Range;

/// Nesting deeper than this is refused rather than recursed into.
const MAX_DEPTH: usize = 256;
const BREAK: u8 = 0xff;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CborError(pub String);

type R<T> = Result<T, CborError>;

fn err<T>(what: impl Into<String>) -> R<T> {
    Err(CborError(what.into()))
}

/// A decoded head: major type, the "additional information" argument, and whether the item is
/// of indefinite length.
struct Head {
    major: u8,
    arg: u64,
    indefinite: bool,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> R<u8> {
        let b = *self.buf.get(self.pos).ok_or_else(|| CborError("truncated CBOR".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> R<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| CborError("CBOR length too large".into()))?;
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(|| CborError("truncated CBOR".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn head(&mut self) -> R<Head> {
        let first = self.byte()?;
        let (major, info) = (first >> 5, first & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.fixed::<2>()?)),
            26 => u64::from(u32::from_be_bytes(self.fixed::<4>()?)),
            27 => u64::from_be_bytes(self.fixed::<8>()?),
            31 if matches!(major, 2..=5 | 7) => return Ok(Head { major, arg: 0, indefinite: true }),
            _ => return err("malformed CBOR item head"),
        };
        Ok(Head { major, arg, indefinite: false })
    }

    fn fixed<const N: usize>(&mut self) -> R<[u8; N]> {
        let s = self.take(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn at_break(&self) -> bool {
        self.buf.get(self.pos) == Some(&BREAK)
    }

    /// Reads past one complete item, returning its byte range.
    fn item_span(&mut self, depth: usize) -> R<Range<usize>> {
        if depth > MAX_DEPTH {
            return err("CBOR nested too deeply");
        }
        let start = self.pos;
        let h = self.head()?;
        match (h.major, h.indefinite) {
            (0 | 1, _) | (7, false) => {}
            (2 | 3, false) => {
                self.take(h.arg)?;
            }
            (2 | 3, true) => {
                while !self.at_break() {
                    let chunk = self.head()?;
                    if chunk.major != h.major || chunk.indefinite {
                        return err("malformed indefinite-length string");
                    }
                    self.take(chunk.arg)?;
                }
                self.pos += 1;
            }
            (4 | 5, false) => {
                let per = if h.major == 5 { 2 } else { 1 };
                for _ in 0..h.arg.saturating_mul(per) {
                    self.item_span(depth + 1)?;
                }
            }
            (4 | 5, true) => {
                while !self.at_break() {
                    self.item_span(depth + 1)?;
                    if h.major == 5 {
                        self.item_span(depth + 1)?;
                    }
                }
                self.pos += 1;
            }
            (6, _) => {
                self.item_span(depth + 1)?;
            }
            _ => return err("unexpected CBOR break"),
        }
        Ok(start..self.pos)
    }

    fn string(&mut self, major: u8) -> R<Vec<u8>> {
        let h = self.head()?;
        if h.major != major {
            return err("unexpected CBOR type");
        }
        if !h.indefinite {
            return Ok(self.take(h.arg)?.to_vec());
        }
        let mut out = Vec::new();
        while !self.at_break() {
            let chunk = self.head()?;
            if chunk.major != major || chunk.indefinite {
                return err("malformed indefinite-length string");
            }
            out.extend_from_slice(self.take(chunk.arg)?);
        }
        self.pos += 1;
        Ok(out)
    }

    fn text(&mut self) -> R<String> {
        String::from_utf8(self.string(3)?).map_err(|_| CborError("CBOR text is not UTF-8".into()))
    }
}

/// The entries of a top-level map whose keys are all text: key → the value's byte range.
pub fn map_entries(buf: &[u8]) -> R<Vec<(String, Range<usize>)>> {
    let mut r = Reader { buf, pos: 0 };
    let h = r.head()?;
    if h.major != 5 {
        return err("CBOR body must be a map");
    }
    let mut out = Vec::new();
    let mut remaining = h.arg;
    loop {
        if h.indefinite {
            if r.at_break() {
                r.pos += 1;
                break;
            }
        } else if remaining == 0 {
            break;
        } else {
            remaining -= 1;
        }
        let key = r.text().map_err(|_| CborError("CBOR map keys must be text".into()))?;
        let value = r.item_span(1)?;
        out.push((key, value));
    }
    if r.pos != buf.len() {
        return err("trailing bytes after the CBOR body");
    }
    Ok(out)
}

/// Converts one item to JSON, for the envelope fields and the few message fields pgworld reads.
/// Byte strings become `{"__type":"Uint8Array","data":<base64>}`; tags are looked through.
pub fn to_json(item: &[u8]) -> R<Value> {
    let mut r = Reader { buf: item, pos: 0 };
    let v = value(&mut r, 0)?;
    if r.pos != item.len() {
        return err("trailing bytes after a CBOR item");
    }
    Ok(v)
}

fn value(r: &mut Reader<'_>, depth: usize) -> R<Value> {
    if depth > MAX_DEPTH {
        return err("CBOR nested too deeply");
    }
    let start = r.pos;
    let h = r.head()?;
    Ok(match h.major {
        0 => Value::from(h.arg),
        1 => Number::from_i128(-1 - i128::from(h.arg)).map_or(Value::Null, Value::Number),
        2 | 3 => {
            r.pos = start;
            if h.major == 3 {
                Value::String(r.text()?)
            } else {
                let bytes = r.string(2)?;
                serde_json::json!({"__type": "Uint8Array", "data": STANDARD.encode(bytes)})
            }
        }
        4 => {
            let mut a = Vec::new();
            let mut left = h.arg;
            while if h.indefinite { !r.at_break() } else { left > 0 } {
                a.push(value(r, depth + 1)?);
                left = left.saturating_sub(1);
            }
            if h.indefinite {
                r.pos += 1;
            }
            Value::Array(a)
        }
        5 => {
            let mut m = Map::new();
            let mut left = h.arg;
            while if h.indefinite { !r.at_break() } else { left > 0 } {
                let k = match value(r, depth + 1)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let v = value(r, depth + 1)?;
                m.insert(k, v);
                left = left.saturating_sub(1);
            }
            if h.indefinite {
                r.pos += 1;
            }
            Value::Object(m)
        }
        6 => value(r, depth + 1)?,
        _ => simple(r, start, &h)?,
    })
}

fn simple(r: &Reader<'_>, start: usize, h: &Head) -> R<Value> {
    let info = r.buf[start] & 0x1f;
    let float = match info {
        20 => return Ok(Value::Bool(false)),
        21 => return Ok(Value::Bool(true)),
        22 | 23 => return Ok(Value::Null),
        25 => half_to_f64(u16::try_from(h.arg).unwrap_or_default()),
        26 => f64::from(f32::from_bits(u32::try_from(h.arg).unwrap_or_default())),
        27 => f64::from_bits(h.arg),
        _ => return Ok(Value::Null),
    };
    Ok(Number::from_f64(float).map_or(Value::Null, Value::Number))
}

fn half_to_f64(bits: u16) -> f64 {
    let exp = i32::from((bits >> 10) & 0x1f);
    let mant = f64::from(bits & 0x3ff);
    let magnitude = match exp {
        0 => mant * 2f64.powi(-24),
        31 => {
            if mant == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => (1.0 + mant / 1024.0) * 2f64.powi(exp - 15),
    };
    if bits & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// True for the CBOR `null` and `undefined` simple values.
pub fn is_null(item: &[u8]) -> bool {
    matches!(item, [0xf6] | [0xf7])
}

fn put_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    match arg {
        0..=23 => out.push(m | arg as u8),
        24..=0xff => out.extend([m | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((arg as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(arg.to_be_bytes());
        }
    }
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Plain CBOR for a JSON value in which `{"__type": "Uint8Array", "data": <base64>}` stands for
/// bytes (the envelope payload form): byte strings untagged, maps with text keys, numbers as
/// integers when whole and as doubles otherwise, as cbor-x writes them for the WDK.
pub fn from_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_json(&mut out, v);
    out
}

fn put_json(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => put_head(out, 0, u),
            (None, Some(i)) => put_head(out, 1, i.unsigned_abs() - 1),
            _ => {
                out.push(0xfb);
                out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_be_bytes());
            }
        },
        Value::String(s) => put_text(out, s),
        Value::Array(items) => {
            put_head(out, 4, items.len() as u64);
            for item in items {
                put_json(out, item);
            }
        }
        Value::Object(m) => {
            if let Some(bytes) = envelope_bytes(m) {
                put_head(out, 2, bytes.len() as u64);
                out.extend_from_slice(&bytes);
                return;
            }
            put_head(out, 5, m.len() as u64);
            for (k, item) in m {
                put_text(out, k);
                put_json(out, item);
            }
        }
    }
}

fn envelope_bytes(m: &Map<String, Value>) -> Option<Vec<u8>> {
    if m.len() != 2 || m.get("__type").and_then(Value::as_str) != Some("Uint8Array") {
        return None;
    }
    STANDARD.decode(m.get("data")?.as_str()?).ok()
}

/// The CBOR delivery body (queue.md §7): `{message: <stored bytes>, meta: {queueName, messageId,
/// attempt}}`, with the stored item spliced in unchanged.
pub fn delivery_body(message: &[u8], queue_name: &str, message_id: &str, attempt: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + queue_name.len() + 64);
    put_head(&mut out, 5, 2);
    put_text(&mut out, "message");
    out.extend_from_slice(message);
    put_text(&mut out, "meta");
    put_head(&mut out, 5, 3);
    put_text(&mut out, "queueName");
    put_text(&mut out, queue_name);
    put_text(&mut out, "messageId");
    put_text(&mut out, message_id);
    put_text(&mut out, "attempt");
    put_head(&mut out, 0, attempt);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // {"queueName": "q", "message": h'0102', "delaySeconds": 1.5}
    const ENVELOPE: &[u8] = &[
        0xa3, 0x69, b'q', b'u', b'e', b'u', b'e', b'N', b'a', b'm', b'e', 0x61, b'q', 0x67, b'm', b'e', b's', b's', b'a', b'g',
        b'e', 0x42, 1, 2, 0x6c, b'd', b'e', b'l', b'a', b'y', b'S', b'e', b'c', b'o', b'n', b'd', b's', 0xf9, 0x3e, 0x00,
    ];

    #[test]
    fn walks_a_map_and_keeps_value_bytes() {
        let entries = map_entries(ENVELOPE).expect("valid envelope");
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["queueName", "message", "delaySeconds"]);
        assert_eq!(&ENVELOPE[entries[1].1.clone()], &[0x42, 1, 2]);
        assert_eq!(to_json(&ENVELOPE[entries[0].1.clone()]), Ok(json!("q")));
        assert_eq!(to_json(&ENVELOPE[entries[2].1.clone()]), Ok(json!(1.5)));
        assert_eq!(to_json(&[0x42, 1, 2]), Ok(json!({"__type": "Uint8Array", "data": "AQI="})));
    }

    #[test]
    fn tolerates_tags_and_indefinite_lengths() {
        // 0xbf map(*) "a": tag 64 (uint8 typed array) h'ff', "b": [_ 1, -2], break
        let item = [0xbf, 0x61, b'a', 0xd8, 0x40, 0x41, 0xff, 0x61, b'b', 0x9f, 0x01, 0x21, 0xff, 0xff];
        assert_eq!(to_json(&item), Ok(json!({"a": {"__type": "Uint8Array", "data": "/w=="}, "b": [1, -2]})));
        let entries = map_entries(&item).expect("indefinite map");
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn rejects_malformed_input() {
        assert!(map_entries(&[0x82, 0x01, 0x02]).is_err(), "not a map");
        assert!(map_entries(&[0xa1, 0x01, 0x02]).is_err(), "non-text key");
        assert!(map_entries(&[0xa1, 0x61]).is_err(), "truncated");
        assert!(map_entries(&[0xa0, 0x00]).is_err(), "trailing bytes");
        let deep: Vec<u8> = std::iter::repeat_n(0x81u8, 10_000).chain([0x00]).collect();
        assert!(to_json(&deep).is_err(), "depth is bounded");
        let mut wrapped = vec![0xa1, 0x61, b'm'];
        wrapped.extend(&deep);
        assert!(map_entries(&wrapped).is_err(), "depth is bounded while skipping");
    }

    #[test]
    fn delivery_body_splices_the_message() {
        let body = delivery_body(&[0xd8, 0x40, 0x41, 0xff], "__wkf_workflow_x", "msg_7", 3);
        let entries = map_entries(&body).expect("valid body");
        assert_eq!(&body[entries[0].1.clone()], &[0xd8, 0x40, 0x41, 0xff]);
        assert_eq!(
            to_json(&body[entries[1].1.clone()]),
            Ok(json!({"queueName": "__wkf_workflow_x", "messageId": "msg_7", "attempt": 3}))
        );
    }

    #[test]
    fn half_floats() {
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert_eq!(half_to_f64(0x0001), 5.960464477539063e-8);
    }

    #[test]
    fn json_with_byte_envelopes_becomes_plain_cbor_and_reads_back() {
        let v = json!({"runId": "wrun_1", "n": [0, 23, 24, -1, -300, 1.5], "ok": true, "none": null,
                       "input": {"__type": "Uint8Array", "data": "AQID"}});
        let bytes = from_json(&v);
        let back = to_json(&bytes).unwrap_or_default();
        assert_eq!(back["runId"], "wrun_1");
        assert_eq!(back["n"], json!([0, 23, 24, -1, -300, 1.5]));
        assert_eq!((back["ok"].clone(), back["none"].clone()), (json!(true), Value::Null));
        // The byte string: major type 2, three bytes.
        assert!(bytes.windows(4).any(|w| w == [0x43, 1, 2, 3]), "{bytes:?}");
        // A continuation's message, as the queue stores it: a one-pair map of two text strings.
        let mut want = vec![0xa1, 0x65];
        want.extend_from_slice(b"runId");
        want.push(0x66);
        want.extend_from_slice(b"wrun_1");
        assert_eq!(from_json(&json!({"runId": "wrun_1"})), want);
    }
}
