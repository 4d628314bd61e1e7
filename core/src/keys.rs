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

#[cfg(test)]
mod tests {
    use super::*;

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
