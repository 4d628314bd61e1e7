//! The WDK's value format: devalue's flattened JSON (a JSON array of values whose containers
//! hold indices into it). Encoding covers what a JSON document can hold; decoding gives JSON
//! back, with devalue's own types read the way `JSON.stringify` would write them (a Date as its
//! ISO string, `undefined` dropped from objects and `null` in arrays, NaN and infinities `null`),
//! and anything JSON has no form for (streams, class instances, typed arrays…) refused by name.

use serde_json::{Map, Value};
use std::collections::HashMap;

const UNDEFINED: i64 = -1;
const HOLE: i64 = -2;
const NAN: i64 = -3;
const POSITIVE_INFINITY: i64 = -4;
const NEGATIVE_INFINITY: i64 = -5;
const NEGATIVE_ZERO: i64 = -6;

/// Deepest nesting either way; beyond it a value is refused rather than recursed into.
pub const MAX_DEPTH: usize = 128;

/// `devalue.stringify` of a JSON value. Equal primitives share one slot, as devalue writes them.
pub fn stringify(value: &Value) -> Result<String, String> {
    let mut out = Flattener { values: Vec::new(), primitives: HashMap::new() };
    out.add(value, 0)?;
    serde_json::to_string(&out.values).map_err(|e| e.to_string())
}

struct Flattener {
    values: Vec<Value>,
    primitives: HashMap<String, i64>,
}

impl Flattener {
    fn add(&mut self, v: &Value, depth: usize) -> Result<i64, String> {
        if depth > MAX_DEPTH {
            return Err(format!("the value is nested deeper than {MAX_DEPTH} levels"));
        }
        let primitive = !matches!(v, Value::Array(_) | Value::Object(_));
        if primitive {
            let key = v.to_string();
            if let Some(i) = self.primitives.get(&key) {
                return Ok(*i);
            }
            let i = self.values.len() as i64;
            self.values.push(v.clone());
            self.primitives.insert(key, i);
            return Ok(i);
        }
        let i = self.values.len();
        self.values.push(Value::Null);
        self.values[i] = match v {
            Value::Array(items) => {
                let mut idx = Vec::with_capacity(items.len());
                for item in items {
                    idx.push(Value::from(self.add(item, depth + 1)?));
                }
                Value::Array(idx)
            }
            Value::Object(m) => {
                let mut idx = Map::new();
                for (k, item) in m {
                    idx.insert(k.clone(), Value::from(self.add(item, depth + 1)?));
                }
                Value::Object(idx)
            }
            _ => Value::Null,
        };
        Ok(i as i64)
    }
}

/// A decoded slot: a JSON value, or devalue's `undefined` (which JSON writes by leaving out).
enum Slot {
    Json(Value),
    Undefined,
}

impl Slot {
    fn or_null(self) -> Value {
        match self {
            Slot::Json(v) => v,
            Slot::Undefined => Value::Null,
        }
    }
}

/// `devalue.parse` into JSON.
pub fn parse(text: &str) -> Result<Value, String> {
    let parsed: Value = serde_json::from_str(text).map_err(|e| format!("not devalue data: {e}"))?;
    unflatten(&parsed)
}

/// `devalue.unflatten` of already-parsed JSON (what spec-version-1 runs store) into JSON.
pub fn unflatten(parsed: &Value) -> Result<Value, String> {
    match parsed {
        Value::Number(n) => Ok(constant(n.as_i64().unwrap_or(0)).unwrap_or(Slot::Json(Value::Null)).or_null()),
        Value::Array(values) if !values.is_empty() => {
            let mut r = Reader { values, open: vec![false; values.len()] };
            Ok(r.hydrate(0, 0)?.or_null())
        }
        _ => Err("not devalue data: expected a non-empty array".into()),
    }
}

fn constant(i: i64) -> Option<Slot> {
    match i {
        UNDEFINED | HOLE => Some(Slot::Undefined),
        // JSON.stringify writes these as null; -0 as 0.
        NAN | POSITIVE_INFINITY | NEGATIVE_INFINITY => Some(Slot::Json(Value::Null)),
        NEGATIVE_ZERO => Some(Slot::Json(Value::from(0))),
        _ => None,
    }
}

struct Reader<'a> {
    values: &'a [Value],
    /// Slots being decoded: meeting one again is a cycle, which JSON cannot hold.
    open: Vec<bool>,
}

impl Reader<'_> {
    fn index(v: &Value) -> Result<i64, String> {
        v.as_i64().ok_or_else(|| "not devalue data: an index is not an integer".to_owned())
    }

    fn hydrate(&mut self, i: i64, depth: usize) -> Result<Slot, String> {
        if let Some(c) = constant(i) {
            return Ok(c);
        }
        if depth > MAX_DEPTH {
            return Err(format!("the value is nested deeper than {MAX_DEPTH} levels"));
        }
        let slot =
            usize::try_from(i).ok().filter(|s| *s < self.values.len()).ok_or("not devalue data: an index is out of range")?;
        if self.open[slot] {
            return Err("the value refers to itself, which JSON cannot hold".into());
        }
        self.open[slot] = true;
        let out = self.decode(slot, depth);
        self.open[slot] = false;
        out
    }

    fn decode(&mut self, slot: usize, depth: usize) -> Result<Slot, String> {
        let value = &self.values[slot];
        match value {
            Value::Array(items) => match items.first() {
                Some(Value::String(kind)) => self.typed(kind, &items[1..], depth),
                _ => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(self.hydrate(Self::index(item)?, depth + 1)?.or_null());
                    }
                    Ok(Slot::Json(Value::Array(out)))
                }
            },
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, item) in m {
                    if let Slot::Json(v) = self.hydrate(Self::index(item)?, depth + 1)? {
                        out.insert(k.clone(), v);
                    }
                }
                Ok(Slot::Json(Value::Object(out)))
            }
            primitive => Ok(Slot::Json(primitive.clone())),
        }
    }

    /// `["Type", …]` slots.
    fn typed(&mut self, kind: &str, rest: &[Value], depth: usize) -> Result<Slot, String> {
        let text = |i: usize| rest.get(i).and_then(Value::as_str).map(str::to_owned);
        match kind {
            "Date" => Ok(Slot::Json(Value::String(text(0).ok_or("not devalue data: a Date without its string")?))),
            "BigInt" => {
                let digits = text(0).ok_or("not devalue data: a BigInt without digits")?;
                // As a JSON number when it is one; a string past what JSON readers take exactly.
                Ok(Slot::Json(digits.parse::<i64>().map(Value::from).unwrap_or(Value::String(digits))))
            }
            "Object" => self.hydrate(Self::index(rest.first().unwrap_or(&Value::Null))?, depth + 1),
            "Set" => {
                let mut out = Vec::with_capacity(rest.len());
                for item in rest {
                    out.push(self.hydrate(Self::index(item)?, depth + 1)?.or_null());
                }
                Ok(Slot::Json(Value::Array(out)))
            }
            "Map" => {
                let mut out = Map::new();
                for pair in rest.chunks(2) {
                    let key = self.hydrate(Self::index(&pair[0])?, depth + 1)?.or_null();
                    let Value::String(key) = key else {
                        return Err("the value holds a Map with keys that are not strings, which JSON cannot hold".into());
                    };
                    let value = match pair.get(1) {
                        Some(v) => self.hydrate(Self::index(v)?, depth + 1)?.or_null(),
                        None => Value::Null,
                    };
                    out.insert(key, value);
                }
                Ok(Slot::Json(Value::Object(out)))
            }
            "null" => {
                let mut out = Map::new();
                for pair in rest.chunks(2) {
                    let key = pair[0].as_str().ok_or("not devalue data: an object key is not a string")?.to_owned();
                    if let Some(v) = pair.get(1) {
                        if let Slot::Json(v) = self.hydrate(Self::index(v)?, depth + 1)? {
                            out.insert(key, v);
                        }
                    }
                }
                Ok(Slot::Json(Value::Object(out)))
            }
            "RegExp" => Ok(Slot::Json(Value::Object(Map::new()))),
            other => Err(format!("the value holds a {other}, which JSON cannot hold")),
        }
    }
}

#[cfg(test)]
mod tests;
