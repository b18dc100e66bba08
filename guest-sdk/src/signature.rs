//! HMAC-SHA256 signatures, as vendors sign their webhooks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Standard base64 of HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256_base64(key: &[u8], data: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(key, data))
}

/// True when `signature` (standard base64) is the HMAC-SHA256 of `data` under `key`.
/// The comparison takes the same time wherever the bytes differ.
pub fn verify_hmac_sha256_base64(key: &[u8], data: &[u8], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_notification_vector() {
        // FACTS.md: the callback signature vector.
        let sig = hmac_sha256_base64(b"abcd1234efgh5678", br#"{"message":{"eventId":"1"}}"#);
        assert_eq!(sig, "K85qmTIlvEkOr6S+WiOKj/yfELQSC8lsRD0RALn7fLE=");
        assert!(verify_hmac_sha256_base64(
            b"abcd1234efgh5678",
            br#"{"message":{"eventId":"1"}}"#,
            &sig
        ));
        assert!(!verify_hmac_sha256_base64(b"abcd1234efgh5678", b"{}", &sig));
        assert!(!verify_hmac_sha256_base64(b"k", b"{}", "not base64!"));
    }
}
