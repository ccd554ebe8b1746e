//! `[[api_keys]]`: API keys configured by the SHA-256 of the key, each with a role, and
//! [`hash_api_key`] to compute that hash.

use sha2::{Digest, Sha256};

use sessync_proto::Role;

use crate::model::ApiKey;
use crate::reader::Table;
use crate::validate;

const ROLES: &[(&str, Role)] = &[("app", Role::App), ("admin", Role::Admin)];

/// The SHA-256 of an API key's UTF-8 bytes: what `[[api_keys]] sha256` holds (in hex) and what
/// a presented `Authorization: Bearer` key is hashed to before comparing.
pub fn hash_api_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Reads every `[[api_keys]]` entry; names and hashes must be unique.
pub(crate) fn api_keys(tables: Vec<Table<'_>>) -> Option<Vec<ApiKey>> {
    let mut keys = Vec::with_capacity(tables.len());
    let mut all_ok = true;
    // (name or hash, the entry that has it) of the entries read so far.
    let mut names: Vec<(String, String)> = Vec::new();
    let mut hashes: Vec<([u8; 32], String)> = Vec::new();
    for mut t in tables {
        let name = t.string("name").require(&t, "name");
        let name = t.validate("name", name, |n| validate::key_name(&n));
        let sha256 = t.string("sha256").require(&t, "sha256");
        let sha256 = t.validate("sha256", sha256, |h| validate::sha256_hex(&h));
        let role = t.choice("role", ROLES).require(&t, "role");

        if let Some(name) = &name {
            match names.iter().find(|(n, _)| n == name) {
                Some((_, first)) => {
                    t.invalid("name", format!("{name:?} is also the name of {first}"))
                }
                None => names.push((name.clone(), t.here().to_owned())),
            }
        }
        if let Some(hash) = &sha256 {
            match hashes.iter().find(|(h, _)| h == hash) {
                Some((_, first)) => t.invalid(
                    "sha256",
                    format!("is the same key as {first}; give each key one entry"),
                ),
                None => hashes.push((*hash, t.here().to_owned())),
            }
        }
        t.finish();
        match (name, sha256, role) {
            (Some(name), Some(sha256), Some(role)) => keys.push(ApiKey { name, sha256, role }),
            _ => all_ok = false,
        }
    }
    all_ok.then_some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_sha256sum() {
        // printf %s abc | sha256sum
        assert_eq!(
            hex::encode(hash_api_key("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
