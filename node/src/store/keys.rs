//! Key layout in the column families.

use sessync_proto::{OpId, SiteName};

/// Big-endian bytes of an index, so RocksDB's order is numeric order.
pub fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// The index a key of `index_key` stands for.
pub fn key_index(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.get(..8)?.try_into().ok()?))
}

pub const VOTE: &[u8] = b"vote";
pub const COMMITTED: &[u8] = b"committed";
pub const LAST_PURGED: &[u8] = b"last_purged";

pub const APPLIED: &[u8] = b"applied";
pub const MEMBERSHIP: &[u8] = b"membership";
pub const POLICY: &[u8] = b"policy";
pub const CLOCK: &[u8] = b"clock";
pub const AUDIT_NEXT: &[u8] = b"audit_next_seq";
pub const SNAPSHOT: &[u8] = b"snapshot_meta";
pub const SNAPSHOT_DATA: &[u8] = b"snapshot_data";

/// Keys of the `sm` family that are state (everything but the stored snapshot).
pub const SM_STATE_KEYS: [&[u8]; 5] = [APPLIED, MEMBERSHIP, POLICY, CLOCK, AUDIT_NEXT];

/// `federation` family: an outbox entry, by target site and operation id.
pub fn outbox_key(site: &SiteName, op_id: &OpId) -> String {
    format!("o/{site}/{op_id}")
}

/// `federation` family: an operation received from a peer, by origin and operation id.
pub fn received_key(origin: &SiteName, op_id: &OpId) -> String {
    format!("r/{origin}/{op_id}")
}

/// `federation` family: a nonce a peer used, by origin and nonce.
pub fn nonce_key(origin: &SiteName, nonce: &str) -> String {
    format!("n/{origin}/{nonce}")
}
