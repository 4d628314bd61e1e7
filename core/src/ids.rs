//! Identifiers: slot event ids (`evnt_` + 26 digits) and ULID run ids (`wrun_` + ULID).

/// Largest slot: JavaScript's safe-integer bound, which WDK clients parse slot ids into.
pub const MAX_SLOT: i64 = (1 << 53) - 1;

pub fn event_id(slot: i64) -> String {
    format!("evnt_{slot:026}")
}

/// Parses a slot id: an optional prefix ending in `_`, then exactly 26 digits whose first 10 are
/// `0`, with a value ≥ 1 (spec/events.md §3.2). Anything else is not a slot id.
pub fn parse_event_id(s: &str) -> Option<i64> {
    let digits = match s.rfind('_') {
        Some(i) => &s[i + 1..],
        None => s,
    };
    if digits.len() != 26 || !digits.bytes().all(|b| b.is_ascii_digit()) || !digits.starts_with("0000000000") {
        return None;
    }
    let slot: i64 = digits[10..].parse().ok()?;
    (1..=MAX_SLOT).contains(&slot).then_some(slot)
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A 26-character ULID from a 48-bit millisecond timestamp and 80 random bits.
pub fn ulid(ms: u64, random: u128) -> String {
    let value: u128 = (u128::from(ms & 0xFFFF_FFFF_FFFF) << 80) | (random & ((1u128 << 80) - 1));
    (0..26).rev().map(|i| CROCKFORD[((value >> (i * 5)) & 31) as usize] as char).collect()
}

/// Keeps ULIDs minted by one backend strictly increasing, even within one millisecond.
#[derive(Debug, Default)]
pub struct MonotonicUlid {
    last_ms: u64,
    last_random: u128,
}

impl MonotonicUlid {
    pub fn next(&mut self, ms: u64, fresh_random: u128) -> String {
        let mask = (1u128 << 80) - 1;
        if ms <= self.last_ms && self.last_random < mask {
            self.last_random += 1;
        } else {
            self.last_ms = ms.max(self.last_ms);
            self.last_random = fresh_random & mask;
        }
        ulid(self.last_ms, self.last_random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip() {
        assert_eq!(event_id(3), "evnt_00000000000000000000000003");
        assert_eq!(parse_event_id("evnt_00000000000000000000000003"), Some(3));
        assert_eq!(parse_event_id("00000000000000000000000042"), Some(42));
        assert_eq!(parse_event_id("x_00000000000000000000000042"), Some(42));
        assert_eq!(parse_event_id(&event_id(MAX_SLOT)), Some(MAX_SLOT));
    }

    #[test]
    fn malformed_event_ids_are_rejected() {
        for bad in [
            "",
            "evnt_0",
            "evnt_00000000000000000000000000",
            "evnt_1000000000000000000000000001",
            "evnt_0000000000000000000000000a",
            "evnt_000000000000000000000000001",
            "evnt_00000000009999999999999999",
        ] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn ulids_are_crockford_and_monotonic() {
        assert_eq!(ulid(0, 0), "00000000000000000000000000");
        assert_eq!(ulid(1_469_918_176_385, 0).get(..10), Some("01ARYZ6S41"));
        let mut m = MonotonicUlid::default();
        let a = m.next(1000, 5);
        let b = m.next(1000, 1);
        let c = m.next(999, 0);
        let d = m.next(1001, 0);
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert!(a.chars().all(|ch| CROCKFORD.contains(&(ch as u8))));
    }
}
