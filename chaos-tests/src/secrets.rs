//! The secrets a test cluster is made with: a random app key, admin key and cluster secret.
//!
//! Nodes are configured with the SHA-256 of each API key; the keys themselves stay with the
//! harness, which hands them to the clients it builds.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The keys and secret of one test cluster.
#[derive(Clone, Debug)]
pub(crate) struct Secrets {
    /// Bearer key with role `app`.
    pub app_key: String,
    /// Bearer key with role `admin`.
    pub admin_key: String,
    /// The cluster secret shared by every node: 32 random bytes in hex.
    pub cluster_secret: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Lowercase hex SHA-256 of `key`, as `printf %s KEY | sha256sum` prints it.
pub(crate) fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Secrets {
    /// Fresh random secrets.
    pub(crate) fn generate() -> Self {
        Self {
            app_key: format!("app-{}", random_hex(24)),
            admin_key: format!("admin-{}", random_hex(24)),
            cluster_secret: random_hex(32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_sha256sum() {
        // printf %s abc | sha256sum
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_are_fresh_and_sized() {
        let a = Secrets::generate();
        let b = Secrets::generate();
        assert_ne!(a.app_key, b.app_key);
        assert_ne!(a.app_key, a.admin_key);
        assert_eq!(a.cluster_secret.len(), 64);
        assert!(a.cluster_secret.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
