//! Session tokens: 256 random bits, shown once, stored only as their SHA-256.
//!
//! Every token is random, an idempotent create's too: none is ever derived from a key, so
//! holding the site's secrets is not enough to mint one. A replayed create cannot give back a
//! token it never stored, so it hands out a fresh one that opens the session too (see
//! `api::sessions`, `session::IssueToken`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::session::TokenHash;

/// A fresh token: 32 random bytes, base64url without padding (43 characters).
pub(crate) fn random() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
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
    fn hash_compare() {
        let a = TokenHash::of("x");
        assert!(hashes_equal(&a, &TokenHash::of("x")));
        assert!(!hashes_equal(&a, &TokenHash::of("y")));
    }
}
