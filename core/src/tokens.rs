//! Per-app API tokens for the façade outside Kubernetes: `pgw_<id>_<secret>`, where `id` finds
//! the stored row and only SHA-256(secret) is stored, compared in constant time. The token is
//! shown once, when it is created.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "pgw_";
pub const SECRET_BYTES: usize = 32;
/// Longest label an operator may give a token.
pub const MAX_LABEL_CHARS: usize = 200;

/// The token a caller presents, from its row id and random secret.
pub fn format(id: i64, secret: &[u8; SECRET_BYTES]) -> String {
    format!("{PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret))
}

/// The row id and secret of a well-formed token; None for anything else.
pub fn parse(token: &str) -> Option<(i64, [u8; SECRET_BYTES])> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: i64 = id.parse().ok()?;
    let bytes = URL_SAFE_NO_PAD.decode(secret).ok()?;
    Some((id, bytes.try_into().ok()?))
}

pub fn hash(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Equal byte strings, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimizer from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// Whether `secret` is the one whose hash is stored.
pub fn matches(secret: &[u8], stored_hash: &[u8]) -> bool {
    constant_time_eq(&hash(secret), stored_hash)
}

/// The public id of a token row, as listings and revocation name it.
pub fn public_id(id: i64) -> String {
    format!("tok_{id}")
}

pub fn parse_public_id(s: &str) -> Option<i64> {
    s.strip_prefix("tok_").filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).and_then(|d| d.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_anything_else_is_refused() {
        let secret = [7u8; SECRET_BYTES];
        let t = format(42, &secret);
        assert!(t.starts_with("pgw_42_") && t.len() == "pgw_42_".len() + 43, "{t}");
        assert_eq!(parse(&t), Some((42, secret)));
        for bad in ["", "pgw_", "pgw_42", "pgw__abc", "pgw_x_abc", "pgw_42_short", "Bearer pgw_42_x", "pgw_-1_AAAA"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse(&format!("{t}A")), None, "a secret of the wrong length");
        assert_eq!(parse(&t.replace("pgw_42", "pgw_99999999999999999999")), None, "an id out of range");
    }

    #[test]
    fn only_the_matching_secret_matches_its_hash() {
        let secret = [1u8; SECRET_BYTES];
        let stored = hash(&secret);
        assert!(matches(&secret, &stored));
        assert!(!matches(&[2u8; SECRET_BYTES], &stored));
        assert!(!matches(&secret, &stored[..31]), "a truncated hash");
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn public_ids_round_trip() {
        assert_eq!(parse_public_id(&public_id(12)), Some(12));
        assert_eq!(parse_public_id("tok_"), None);
        assert_eq!(parse_public_id("12"), None);
        assert_eq!(parse_public_id("tok_1x"), None);
    }
}
