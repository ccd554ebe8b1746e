//! Session tokens: 256 random bits, shown once, stored only as their SHA-256.
//!
//! A create that carries an idempotency key gets a token derived by HMAC from the site's token
//! key and the new session's id (random, made by the leader), so a retry after a lost answer
//! returns the same session *and* a working token without the token ever being stored. The
//! token key is `token_secret_file` (or `SESSYNC_TOKEN_SECRET`), never the Raft RPC secret
//! itself; when none is configured it is derived from the cluster secret under a label of its
//! own ([`TokenKey::new`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sessync_proto::SessionId;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::session::TokenHash;

/// A fresh token: 32 random bytes, base64url without padding (43 characters).
pub(crate) fn random() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key idempotent tokens are derived with.
#[derive(Clone)]
pub(crate) struct TokenKey(Vec<u8>);

impl TokenKey {
    /// `configured` (the token secret), else a key derived from the cluster secret:
    /// HMAC-SHA256(cluster secret, "sessync-token-key-v1").
    pub(crate) fn new(configured: Option<&[u8]>, cluster_secret: &[u8]) -> TokenKey {
        match configured {
            Some(k) => TokenKey(k.to_vec()),
            None => {
                let mut mac = Hmac::<Sha256>::new_from_slice(cluster_secret)
                    .expect("HMAC takes a key of any length");
                mac.update(b"sessync-token-key-v1");
                TokenKey(mac.finalize().into_bytes().to_vec())
            }
        }
    }

    /// The token of the idempotent create that made session `id`:
    /// HMAC-SHA256(token key, "sessync-token-v2\0" + id), base64url.
    pub(crate) fn for_session(&self, id: &SessionId) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(b"sessync-token-v2\0");
        mac.update(id.as_str().as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
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
    fn idempotent_tokens_repeat_per_session_and_key() {
        let a = SessionId::from_random([1; 16]);
        let b = SessionId::from_random([2; 16]);
        let cluster = b"0123456789abcdef0123456789abcdef";
        let k = TokenKey::new(None, cluster);
        assert_eq!(k.for_session(&a), k.for_session(&a));
        assert_ne!(k.for_session(&a), k.for_session(&b));
        // A token key of its own gives other tokens than the derived one.
        let own = TokenKey::new(Some(b"a token secret of its own, 32 bytes"), cluster);
        assert_ne!(own.for_session(&a), k.for_session(&a));
        // The derived key is not the cluster secret itself.
        assert_ne!(k.0, cluster.to_vec());
    }

    #[test]
    fn hash_compare() {
        let a = TokenHash::of("x");
        assert!(hashes_equal(&a, &TokenHash::of("x")));
        assert!(!hashes_equal(&a, &TokenHash::of("y")));
    }
}
