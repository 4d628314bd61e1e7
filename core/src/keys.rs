//! Per-run encryption keys (spec/lifecycle.md §4): HKDF-SHA256 over the app's secret, salted with
//! the run id, so every run has its own key and the secret never leaves the database.

use hkdf::Hkdf;
use sha2::Sha256;

pub const INFO: &[u8] = b"workflow-encryption";

/// The 32-byte key of `run_id` under `secret`.
pub fn run_key(secret: &[u8], run_id: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8,160-byte output limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(run_id.as_bytes()), secret).expand(INFO, &mut key);
    key
}

/// The opaque channel of a stream's NOTIFY pings: a keyed hash of the app and the stream name, as
/// 32 hex digits. Any role can LISTEN; without `key` nobody can tell which stream a ping is for.
pub fn stream_channel(key: &[u8], app: i32, name: &str) -> String {
    let mut out = [0u8; 16];
    let identity = format!("{app}:{name}");
    // 16 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(b"pgworld-stream-channel"), key).expand(identity.as_bytes(), &mut out);
    out.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_channels_are_opaque_stable_and_distinct() {
        let key = [9u8; 32];
        let c = stream_channel(&key, 3, "customer-42-invoice-stream");
        assert_eq!(c.len(), 32);
        assert!(c.bytes().all(|b| b.is_ascii_hexdigit()) && !c.contains("customer"), "{c}");
        assert_eq!(c, stream_channel(&key, 3, "customer-42-invoice-stream"), "stable");
        assert_ne!(c, stream_channel(&key, 4, "customer-42-invoice-stream"), "per app");
        assert_ne!(c, stream_channel(&key, 3, "customer-42-invoice-streaM"), "per name");
        assert_ne!(c, stream_channel(&[8u8; 32], 3, "customer-42-invoice-stream"), "per key");
        // App 3 with "4:x" and app 34 with "x" hash different inputs ("3:4:x", "34:x").
        assert_ne!(stream_channel(&key, 3, "4:x"), stream_channel(&key, 34, "x"));
    }

    #[test]
    fn matches_the_spec_test_vector() {
        let secret: Vec<u8> = (0u8..32).collect();
        let key = run_key(&secret, "wrun_01JABCDEFGHJKMNPQRSTVWXYZ0");
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "8600f87a27fe892645d4404f030fe3ed73f2ece75cbe56e1f5db7ce65788984d");
        use base64::Engine;
        assert_eq!(base64::engine::general_purpose::STANDARD.encode(key), "hgD4eif+iSZF1EBPAw/j7XPy7Odcvlbh9dt85leImE0=");
    }

    #[test]
    fn runs_get_different_keys() {
        assert_ne!(run_key(&[7; 32], "wrun_a"), run_key(&[7; 32], "wrun_b"));
    }
}
