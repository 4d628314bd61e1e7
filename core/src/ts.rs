//! Timestamps as microseconds since the Unix epoch: what PostgreSQL stores, with the ISO-8601
//! millisecond rendering the wire uses and the two input forms it accepts (ISO string, epoch ms).

use crate::error::{WfError, WfResult};
use serde_json::Value;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

/// `2026-09-01T12:00:00.123Z`: millisecond precision, always UTC.
pub fn to_iso(ts: Micros) -> String {
    let nanos = i128::from(ts.div_euclid(1000) * 1000) * 1000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        ),
        // Out of the representable range: PostgreSQL's own bounds are narrower, so unreachable in practice.
        Err(_) => String::from("invalid-timestamp"),
    }
}

/// Accepts an RFC 3339 / ISO-8601 string or a number of epoch milliseconds.
pub fn parse_date(field: &str, v: &Value) -> WfResult<Micros> {
    let bad = || WfError::bad_request(format!("{field} must be an ISO-8601 date or epoch milliseconds"));
    match v {
        Value::String(s) => {
            let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?;
            i64::try_from(dt.unix_timestamp_nanos() / 1000).map_err(|_| bad())
        }
        Value::Number(n) => {
            let ms = n.as_f64().filter(|f| f.is_finite()).ok_or_else(bad)?;
            // Inside PostgreSQL's timestamptz range (4713 BC .. AD 294276), with a margin.
            if !(-2.1e14..=8.0e15).contains(&ms) {
                return Err(bad());
            }
            Ok((ms * 1000.0).round() as i64)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_milliseconds_utc() {
        assert_eq!(to_iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(to_iso(1_788_264_000_123_456), "2026-09-01T12:00:00.123Z");
        assert_eq!(to_iso(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_iso_and_epoch_ms() {
        assert_eq!(parse_date("d", &json!("2026-09-01T12:00:00.123Z")).ok(), Some(1_788_264_000_123_000));
        assert_eq!(parse_date("d", &json!("2026-09-01T14:00:00.123+02:00")).ok(), Some(1_788_264_000_123_000));
        assert_eq!(parse_date("d", &json!(1_788_264_000_123_i64)).ok(), Some(1_788_264_000_123_000));
        assert!(parse_date("d", &json!("yesterday")).is_err());
        assert!(parse_date("d", &json!(true)).is_err());
        assert!(parse_date("d", &json!(1e300)).is_err());
        assert!(parse_date("d", &json!(-8_000_000_000_000_000_i64)).is_err(), "before 4713 BC");
        assert!(parse_date("d", &json!(-62_135_596_800_000_i64)).is_ok(), "year 1");
    }
}
