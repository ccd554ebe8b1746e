//! Fuzz target `cluster_proof`: the proof a node-to-node request carries
//! (`x-sessync-cluster-auth`, `sessync_signing::ClusterProof`) and the signed clock note
//! (`x-sessync-clock`, `ClockNote`), checked as `api::internal` checks them: `authentic`, then
//! `admissible`, then the body against `matches`; `SeenNonces` remembers the proof.
//!
//! Arbitrary header text must be refused without a panic. A proof made with the secret (from
//! fuzzed fields) must be accepted for its own path and refused for another path or secret;
//! `admissible` must say exactly what its rule says; and a header with one byte changed must be
//! refused or read as the very same proof (a field written another way, `t=01` for `t=1`, is
//! the same proof, not a forgery). The same holds for clock notes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessync_signing::{AnswerNote, ClockNote, ClusterProof, ProofRefusal, SeenNonces};

const SECRET: &[u8] = b"fuzz-cluster-secret-0123456789abcdef";
const OTHER_SECRET: &[u8] = b"another-secret-of-the-same-length!!!";

/// `text` with the byte at `at` (modulo its length) replaced by `byte`, if still UTF-8.
fn edited(text: &str, at: usize, byte: u8) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    if bytes.is_empty() {
        return None;
    }
    let at = at % bytes.len();
    bytes[at] = byte;
    String::from_utf8(bytes).ok().filter(|e| e != text)
}

type Input<'a> = (
    &'a str,         // header text, as a stranger may send it
    &'a str,         // the route's path
    &'a [u8],        // the body
    (u64, u64, u64), // timestamp, target, this node's id
    (u64, u64),      // this node's clock, the window
    u128,            // the nonce
    (usize, u8),     // one byte changed: where, to what
    (bool, u64),     // an answer status (200 or 503), and a value for the notes
);

fuzz_target!(|input: Input<'_>| {
    let (text, path, body, (ts, target, me), (now, window), nonce, (at, byte), (is_now, v)) = input;

    // A stranger's header.
    if let Ok(p) = ClusterProof::authentic(text, SECRET, path) {
        let _ = p.admissible(me, v, now, window);
        let _ = p.matches(body);
    }
    let _ = ClockNote::check(text, SECRET, path);

    // A genuine proof, from the fuzzed fields.
    let mut proof = ClusterProof::new(target, v, ts, body);
    proof.nonce = format!("{nonce:032x}");
    let header = proof.header(SECRET, path);
    assert_eq!(
        ClusterProof::authentic(&header, SECRET, path),
        Ok(proof.clone())
    );
    assert!(proof.matches(body));
    let mut longer = body.to_vec();
    longer.push(0);
    assert!(!proof.matches(&longer));
    let expected = if target != me {
        Err(ProofRefusal::WrongTarget)
    } else if ts.abs_diff(now) > window {
        Err(ProofRefusal::Stale)
    } else {
        Ok(())
    };
    assert_eq!(proof.admissible(me, v, now, window), expected);
    if expected.is_ok() {
        assert_eq!(
            proof.admissible(me, v.wrapping_add(1), now, window),
            Err(ProofRefusal::OtherIncarnation)
        );
    }
    assert_eq!(
        ClusterProof::authentic(&header, OTHER_SECRET, path),
        Err(ProofRefusal::BadSignature)
    );
    let other_path = format!("{path}/");
    assert_eq!(
        ClusterProof::authentic(&header, SECRET, &other_path),
        Err(ProofRefusal::BadSignature)
    );
    if let Some(forged) = edited(&header, at, byte) {
        if let Ok(p) = ClusterProof::authentic(&forged, SECRET, path) {
            assert_eq!(p, proof, "{forged:?} passed as another proof");
        }
    }
    let seen = SeenNonces::default();
    assert!(seen.first_use(&proof, now, window));
    assert!(
        !seen.first_use(&proof, now, window),
        "a replay was let through"
    );

    // A genuine clock note, bound to this exchange's nonce.
    let note = ClockNote::Report(v as i64);
    let note_header = note.header(SECRET, &proof.nonce);
    assert_eq!(
        ClockNote::check(&note_header, SECRET, &proof.nonce),
        Some(note)
    );
    assert_eq!(
        ClockNote::check(&note_header, OTHER_SECRET, &proof.nonce),
        None
    );
    assert_eq!(
        ClockNote::check(&note_header, SECRET, text),
        (text == proof.nonce).then_some(note)
    );
    if let Some(forged) = edited(&note_header, at, byte) {
        if let Some(n) = ClockNote::check(&forged, SECRET, &proof.nonce) {
            assert_eq!(n, note, "{forged:?} passed as another note");
        }
    }

    // A genuine signed answer, bound to this exchange, its status and body.
    let status = if is_now { 200 } else { 503 };
    let answer = AnswerNote {
        received_ms: ts,
        sent_ms: now,
        incarnation: v,
    };
    let answer_header = answer.header(SECRET, &proof.nonce, status, body);
    assert_eq!(
        AnswerNote::check(&answer_header, SECRET, &proof.nonce, status, body),
        Some(answer)
    );
    assert_eq!(
        AnswerNote::check(&answer_header, SECRET, &proof.nonce, status, &longer),
        None
    );
    let _ = AnswerNote::check(text, SECRET, &proof.nonce, status, body);
    if let Some(forged) = edited(&answer_header, at, byte) {
        if let Some(n) = AnswerNote::check(&forged, SECRET, &proof.nonce, status, body) {
            assert_eq!(n, answer, "{forged:?} passed as another answer");
        }
    }
});
