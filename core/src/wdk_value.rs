//! Values as the WDK stores them in events (spec version 2 and later): bytes that start with a
//! four-letter format name. `devl` is devalue text (crate::devalue); `encr` is AES-256-GCM
//! (12-byte nonce, then ciphertext and tag, no associated data) around another such value, with
//! the run's key; `gzip` and `zstd` (WDK 5, past 1 KiB) are compressed ones. Spec version 1
//! stored the devalue array itself as JSON.

use crate::devalue;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use serde_json::Value;
use std::io::Read;

pub const DEVALUE: &[u8; 4] = b"devl";
pub const ENCRYPTED: &[u8; 4] = b"encr";
pub const GZIP: &[u8; 4] = b"gzip";
pub const ZSTD: &[u8; 4] = b"zstd";
pub const NONCE_BYTES: usize = 12;
/// The most a compressed value may inflate to: a stored value is far smaller, so more is damage.
pub const MAX_INFLATED_BYTES: u64 = 64 * 1024 * 1024;
/// Layers one value may wrap (encrypted, compressed, devalue): more is not a WDK value.
const MAX_LAYERS: usize = 4;

/// Why a stored value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// It is encrypted and no key is available (the app's secret was removed).
    NoKey,
    /// The key does not open it, or the ciphertext is damaged.
    Undecryptable,
    /// Not a WDK value, or one JSON cannot hold.
    Invalid(String),
}

/// The bytes the WDK stores for `value`: `devl` text, sealed with `key` when there is one.
pub fn write(value: &Value, key: Option<&[u8; 32]>, nonce: [u8; NONCE_BYTES]) -> Result<Vec<u8>, String> {
    let text = devalue::stringify(value)?;
    let mut plain = Vec::with_capacity(4 + text.len());
    plain.extend_from_slice(DEVALUE);
    plain.extend_from_slice(text.as_bytes());
    let Some(key) = key else {
        return Ok(plain);
    };
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let sealed = cipher.encrypt(Nonce::from_slice(&nonce), plain.as_slice()).map_err(|_| "encryption failed".to_owned())?;
    let mut out = Vec::with_capacity(4 + NONCE_BYTES + sealed.len());
    out.extend_from_slice(ENCRYPTED);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// JSON for stored bytes, opening, inflating and parsing as their prefixes say.
pub fn read(bytes: &[u8], key: Option<&[u8; 32]>) -> Result<Value, ReadError> {
    let mut current = bytes.to_vec();
    for _ in 0..MAX_LAYERS {
        let (prefix, body) =
            current.split_at_checked(4).ok_or_else(|| ReadError::Invalid("too short for a format prefix".into()))?;
        current = match <&[u8; 4]>::try_from(prefix).map_err(|_| ReadError::Invalid("bad prefix".into()))? {
            DEVALUE => {
                let text = std::str::from_utf8(body).map_err(|_| ReadError::Invalid("devalue text is not UTF-8".into()))?;
                return devalue::parse(text).map_err(ReadError::Invalid);
            }
            ENCRYPTED => {
                let key = key.ok_or(ReadError::NoKey)?;
                let (nonce, sealed) = body.split_at_checked(NONCE_BYTES).ok_or(ReadError::Undecryptable)?;
                let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
                cipher.decrypt(Nonce::from_slice(nonce), sealed).map_err(|_| ReadError::Undecryptable)?
            }
            GZIP => inflate(flate2::read::GzDecoder::new(body))?,
            ZSTD => {
                let decoder = ruzstd::decoding::StreamingDecoder::new(body)
                    .map_err(|e| ReadError::Invalid(format!("zstd data is damaged: {e}")))?;
                inflate(decoder)?
            }
            other => return Err(ReadError::Invalid(format!("unknown format {:?}", String::from_utf8_lossy(other)))),
        };
    }
    Err(ReadError::Invalid("too many nested formats".into()))
}

fn inflate(reader: impl Read) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    let n = reader
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ReadError::Invalid(format!("compressed data is damaged: {e}")))?;
    if n as u64 > MAX_INFLATED_BYTES {
        return Err(ReadError::Invalid(format!("the value inflates past {MAX_INFLATED_BYTES} bytes")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
