//! Fuzz target `body_parsing`: the JSON request bodies of the HTTP API (`sessync_proto::api`,
//! `PolicyUpdate`, the federation `PeerOpRequest`), parsed as the node parses them (serde_json
//! through `serde_path_to_error`, as `api::body::parse` does) and checked with their
//! `validate()`.
//!
//! Every input is tried as every body type. Besides "never panics", it checks:
//! - a body that parsed serializes and parses back to the same value (the client sends what
//!   the node reads);
//! - a `PolicyUpdate` applied to the default policy either fails `Policy::check` or gives a
//!   policy that survives the JSON round trip of the Raft log unchanged.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sessync_proto::api::{
    AddLearnerRequest, ChangeMembershipRequest, CreateSessionRequest, InitRequest,
    InvalidateRequest, ValidateRequest, VerifyRequest,
};
use sessync_proto::federation::PeerOpRequest;
use sessync_proto::{Policy, PolicyUpdate};

/// Parses `bytes` as `T` the node's way; on failure, renders the error as the node does (the
/// field path and the message).
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(de) {
        Ok(v) => Some(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let _ = (path, inner.to_string(), inner.is_syntax(), inner.is_eof());
            None
        }
    }
}

/// What was parsed serializes, and parses back to itself.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) {
    let bytes = serde_json::to_vec(v).expect("a parsed body serializes");
    let again: T = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{v:?} serialized as {} does not parse back: {e}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(&again, v, "the JSON round trip changed the value");
}

fn body<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) -> Option<T> {
    let v = parse::<T>(bytes)?;
    round_trip(&v);
    Some(v)
}

fuzz_target!(|bytes: &[u8]| {
    if let Some(r) = body::<CreateSessionRequest>(bytes) {
        let _ = r.validate().map_err(|e| e.to_string());
    }
    if let Some(r) = body::<ValidateRequest>(bytes) {
        let _ = r.validate().map_err(|e| e.to_string());
    }
    if let Some(r) = body::<VerifyRequest>(bytes) {
        let _ = r.validate().map_err(|e| e.to_string());
    }
    if let Some(r) = body::<InvalidateRequest>(bytes) {
        let _ = r.validate().map_err(|e| e.to_string());
    }
    if let Some(update) = body::<PolicyUpdate>(bytes) {
        let _ = update.is_empty();
        let base = Policy::default();
        let policy = update.apply_to(&base);
        let _ = policy.differing_keys(&base);
        if policy.check().is_ok() {
            round_trip(&policy);
        }
    }
    let _ = body::<PeerOpRequest>(bytes);
    let _ = body::<InitRequest>(bytes);
    let _ = body::<AddLearnerRequest>(bytes);
    let _ = body::<ChangeMembershipRequest>(bytes);
});
