use super::*;
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::json;

fn key() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

/// Written by Node's WebCrypto and zlib the way @workflow/core writes them (key 0..31, nonce 7s).
const SEALED: &str = "ZW5jcgcHBwcHBwcHBwcHB2sP0DA0dPWbrb8psaxzmrmbbvBf/IX0fNLgbdYwgx4qC3as08X8nne+Zx58C3zEg07xGg==";
const GZIPPED: &str = "Z3ppcB+LCAAAAAAAAANLSS3Lia5WKkmtKFGyMqzVUaoYBaNgFIyCUTAKRsEoGAWjYBQMeqAUCwDtGi9yywsAAA==";
const ZSTD_FRAME: &str = "enN0ZCi1L/1gywrdAACgZGV2bFt7InRleHQiOjF9LCJ4Il0BAGjngzA=";
const SEALED_ZSTD: &str = "ZW5jcgcHBwcHBwcHBwcHB3UZ0jhHuvgJplYZXYBRVP/EKuEo89X1fIbPfMA1ox45X2asf4EoExEy16mmJw8E2mffoMGEHvEd2A==";

fn bytes(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64).unwrap_or_default()
}

#[test]
fn sealing_matches_webcrypto_byte_for_byte_and_reads_back() {
    let v = json!({"ok": true, "n": [1, 2]});
    assert_eq!(write(&v, Some(&key()), [7; 12]), Ok(bytes(SEALED)));
    assert_eq!(read(&bytes(SEALED), Some(&key())), Ok(v.clone()));
    let plain = write(&v, None, [0; 12]).unwrap_or_default();
    assert!(plain.starts_with(b"devl"));
    assert_eq!(read(&plain, None), Ok(v));
}

#[test]
fn compressed_values_from_wdk_5_are_inflated() {
    let big = json!({"text": "x".repeat(3000)});
    assert_eq!(read(&bytes(GZIPPED), None), Ok(big.clone()));
    assert_eq!(read(&bytes(ZSTD_FRAME), None), Ok(big.clone()));
    assert_eq!(read(&bytes(SEALED_ZSTD), Some(&key())), Ok(big));
}

#[test]
fn keys_and_damage_are_reported_apart() {
    assert_eq!(read(&bytes(SEALED), None), Err(ReadError::NoKey));
    assert_eq!(read(&bytes(SEALED), Some(&[9; 32])), Err(ReadError::Undecryptable));
    let mut damaged = bytes(SEALED);
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert_eq!(read(&damaged, Some(&key())), Err(ReadError::Undecryptable));
    assert!(matches!(read(b"abc", None), Err(ReadError::Invalid(_))));
    assert!(matches!(read(b"cbor....", None), Err(ReadError::Invalid(m)) if m.contains("unknown format")));
    assert!(matches!(read(b"gzipnot gzip", None), Err(ReadError::Invalid(_))));
}
