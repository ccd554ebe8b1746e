//! Session tokens: 256 random bits, shown once, stored only as their SHA-256.
//!
//! A create that carries an idempotency key gets a token derived by HMAC from the cluster secret,
//! the user and the key, so a retry after a lost answer returns the same session *and* a working
//! token without the token ever being stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sessync_proto::UserId;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::session::TokenHash;

/// A fresh token: 32 random bytes, base64url without padding (43 characters).
pub(crate) fn random() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The token of an idempotent create: HMAC-SHA256(cluster secret, user, key), base64url.
pub(crate) fn idempotent(secret: &[u8], user: &UserId, key: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(b"sessync-token-v1\0");
    mac.update(user.as_str().as_bytes());
    mac.update(b"\0");
    mac.update(key.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Compares two token hashes in constant time.
pub(crate) fn hashes_equal(a: &TokenHash, b: &TokenHash) -> bool {
    a.0.ct_eq(&b.0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random());
    }

    #[test]
    fn idempotent_tokens_repeat_per_user_and_key() {
        let u = UserId::parse_field("alice", "user_id").unwrap();
        let v = UserId::parse_field("bob", "user_id").unwrap();
        let s = b"0123456789abcdef0123456789abcdef";
        assert_eq!(idempotent(s, &u, "k1"), idempotent(s, &u, "k1"));
        assert_ne!(idempotent(s, &u, "k1"), idempotent(s, &u, "k2"));
        assert_ne!(idempotent(s, &u, "k1"), idempotent(s, &v, "k1"));
        assert_ne!(
            idempotent(s, &u, "k1"),
            idempotent(b"another secret entirely", &u, "k1")
        );
    }

    #[test]
    fn hash_compare() {
        let a = TokenHash::of("x");
        assert!(hashes_equal(&a, &TokenHash::of("x")));
        assert!(!hashes_equal(&a, &TokenHash::of("y")));
    }
}
