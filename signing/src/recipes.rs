//! HMAC-SHA256 signing within a site: [`ClusterProof`] for node-to-node traffic (the cluster
//! secret, in `x-sessync-cluster-auth`), checked before the body is read, with its nonces
//! remembered in [`SeenNonces`]. Verification recomputes the MAC and compares in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Why a node-to-node proof was refused; also the metric label (bounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofRefusal {
    /// No header, or not `v3` with every field.
    Malformed,
    /// The timestamp is outside the window.
    Stale,
    /// The proof is for another node (a captured RPC replayed to a different target).
    WrongTarget,
    /// The MAC does not match.
    BadSignature,
    /// The nonce was used before within the window.
    Replayed,
    /// The body is longer than the route takes.
    TooLarge,
    /// The body is not the one the proof was made for.
    BodyMismatch,
    /// The proof is for another incarnation of this node (made before it restarted, or by a
    /// sender that does not know it yet): the signed answer names the current one.
    OtherIncarnation,
}

impl ProofRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            ProofRefusal::Malformed => "malformed",
            ProofRefusal::Stale => "stale",
            ProofRefusal::WrongTarget => "wrong_target",
            ProofRefusal::BadSignature => "bad_signature",
            ProofRefusal::Replayed => "replayed",
            ProofRefusal::TooLarge => "too_large",
            ProofRefusal::BodyMismatch => "body_mismatch",
            ProofRefusal::OtherIncarnation => "other_incarnation",
        }
    }
}

/// The proof a node-to-node request carries in `x-sessync-cluster-auth`:
/// `v3 t=<ms>,n=<nonce>,to=<node id>,inc=<16 hex>,len=<body bytes>,sha=<hex sha256(body)>,sig=<hex>`,
/// the MAC (cluster secret) over
/// `sessync-cluster-v3\nPOST\n{path}\n{t}\n{n}\n{to}\n{inc}\n{len}\n{sha}`.
///
/// It carries the body's length and hash instead of covering the body itself, so the receiver
/// checks the whole proof (secret, freshness, target, nonce) before it reads a byte of the body,
/// and then checks the body it reads against it.
///
/// `inc` is the target's **incarnation**, a random number it draws at each start and names in
/// every signed answer ([`crate::AnswerNote`]). The nonces a node has seen are kept in memory
/// only; binding each proof to the incarnation it was made for is what keeps a request captured
/// before a restart from being replayed to the restarted node within the freshness window.
/// (Persisting the nonces would cost a durable write per heartbeat; a proof for another
/// incarnation is refused with the current one in the signed answer, and the sender retries at
/// once.) 0 is no incarnation: a sender that knows none yet is told it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterProof {
    pub timestamp_ms: u64,
    /// 32 hex characters, random per request.
    pub nonce: String,
    /// The node the request is for.
    pub target: u64,
    /// The incarnation of the target the request is for (0: not known yet).
    pub incarnation: u64,
    pub body_len: u64,
    pub body_sha256: [u8; 32],
}

impl ClusterProof {
    /// A proof for sending `body` to incarnation `incarnation` of node `target` at `now_ms`,
    /// with a fresh nonce.
    pub fn new(target: u64, incarnation: u64, now_ms: u64, body: &[u8]) -> Self {
        ClusterProof {
            timestamp_ms: now_ms,
            nonce: hex::encode(rand::random::<[u8; 16]>()),
            target,
            incarnation,
            body_len: body.len() as u64,
            body_sha256: Sha256::digest(body).into(),
        }
    }

    fn mac(&self, secret: &[u8], path: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(
            format!(
                "sessync-cluster-v3\nPOST\n{path}\n{}\n{}\n{}\n{:016x}\n{}\n{}",
                self.timestamp_ms,
                self.nonce,
                self.target,
                self.incarnation,
                self.body_len,
                hex::encode(self.body_sha256)
            )
            .as_bytes(),
        );
        mac
    }

    /// The header value, signed for `path`.
    pub fn header(&self, secret: &[u8], path: &str) -> String {
        let sig = hex::encode(self.mac(secret, path).finalize().into_bytes());
        format!(
            "v3 t={},n={},to={},inc={:016x},len={},sha={},sig={sig}",
            self.timestamp_ms,
            self.nonce,
            self.target,
            self.incarnation,
            self.body_len,
            hex::encode(self.body_sha256)
        )
    }

    /// Parses a header value and checks its MAC for `path` (compared in constant time): the
    /// proof is authentic, made by a holder of `secret`. Whether it is fresh and for this node
    /// is [`ClusterProof::admissible`]'s question.
    pub fn authentic(
        header: &str,
        secret: &[u8],
        path: &str,
    ) -> Result<ClusterProof, ProofRefusal> {
        let (proof, sig) = Self::parse(header).ok_or(ProofRefusal::Malformed)?;
        proof
            .mac(secret, path)
            .verify_slice(&sig)
            .map_err(|_| ProofRefusal::BadSignature)?;
        Ok(proof)
    }

    /// Whether an authentic proof may be acted on by node `me` in its incarnation
    /// `incarnation` at `now_ms`: made for this node, stamped within `window_ms` of this node's
    /// clock, and for this incarnation of it.
    pub fn admissible(
        &self,
        me: u64,
        incarnation: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<(), ProofRefusal> {
        if self.target != me {
            return Err(ProofRefusal::WrongTarget);
        }
        if self.timestamp_ms.abs_diff(now_ms) > window_ms {
            return Err(ProofRefusal::Stale);
        }
        if self.incarnation != incarnation {
            return Err(ProofRefusal::OtherIncarnation);
        }
        Ok(())
    }

    /// Whether `body` is the one this proof was made for.
    pub fn matches(&self, body: &[u8]) -> bool {
        body.len() as u64 == self.body_len
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                Sha256::digest(body).as_slice(),
                self.body_sha256.as_slice(),
            ))
    }

    fn parse(header: &str) -> Option<(ClusterProof, Vec<u8>)> {
        let rest = header.strip_prefix("v3 ")?;
        let (mut t, mut n, mut to, mut inc, mut len, mut sha, mut sig) =
            (None, None, None, None, None, None, None);
        for part in rest.split(',') {
            match part.split_once('=')? {
                ("t", v) => t = v.parse::<u64>().ok(),
                ("n", v) if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    n = Some(v.to_owned());
                }
                ("to", v) => to = v.parse::<u64>().ok(),
                ("inc", v) if v.len() == 16 => inc = u64::from_str_radix(v, 16).ok(),
                ("len", v) => len = v.parse::<u64>().ok(),
                ("sha", v) => sha = hex::decode(v).ok().and_then(|b| b.try_into().ok()),
                ("sig", v) if v.len() == 64 => sig = hex::decode(v).ok(),
                _ => return None,
            }
        }
        let proof = ClusterProof {
            timestamp_ms: t?,
            nonce: n?,
            target: to?,
            incarnation: inc?,
            body_len: len?,
            body_sha256: sha?,
        };
        Some((proof, sig?))
    }
}

/// The nonces of node-to-node proofs seen within the window, kept in memory: a captured
/// request sent again is refused. Only requests whose proof verified are remembered, and only
/// once their body matched the proof ([`NonceClaim::keep`]), so neither a stranger nor a
/// request cut short can grow it or use up a nonce.
#[derive(Default)]
pub struct SeenNonces {
    inner: parking_lot::Mutex<NonceMap>,
}

#[derive(Default)]
struct NonceMap {
    /// Nonce → the time (ms) after which it may be forgotten, and whether its request is still
    /// being read (claimed, not yet kept).
    seen: std::collections::HashMap<String, (u64, Claim)>,
    /// Size after the last sweep; the next sweep comes when the map has doubled.
    swept_at: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// A request with this nonce is being read.
    Pending,
    /// A request with this nonce was accepted.
    Kept,
}

/// A nonce claimed by the request being read: while it lives, another request with the same
/// nonce is refused. [`NonceClaim::keep`] remembers the nonce for its window; dropped without
/// it (the body did not match, did not arrive), the nonce is released.
#[must_use = "a claim not kept releases its nonce when dropped"]
pub struct NonceClaim<'a> {
    nonces: &'a SeenNonces,
    nonce: String,
    kept: bool,
}

impl NonceClaim<'_> {
    /// The request was accepted: its nonce stays used until it is out of the window.
    pub fn keep(mut self) {
        if let Some(entry) = self.nonces.inner.lock().seen.get_mut(&self.nonce) {
            entry.1 = Claim::Kept;
        }
        self.kept = true;
    }
}

impl Drop for NonceClaim<'_> {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let mut m = self.nonces.inner.lock();
        if m.seen
            .get(&self.nonce)
            .is_some_and(|e| e.1 == Claim::Pending)
        {
            m.seen.remove(&self.nonce);
        }
    }
}

impl SeenNonces {
    /// Claims `proof`'s nonce while its request is read; `None` if it was used, or is being
    /// used, already (a replay). Kept, it is remembered until its timestamp is out of the window
    /// (`window_ms` past it).
    pub fn claim(
        &self,
        proof: &ClusterProof,
        now_ms: u64,
        window_ms: u64,
    ) -> Option<NonceClaim<'_>> {
        let mut m = self.inner.lock();
        if m.seen.len() >= 2 * m.swept_at.max(1024) {
            m.seen.retain(|_, (forget_after, claim)| {
                *claim == Claim::Pending || *forget_after >= now_ms
            });
            m.swept_at = m.seen.len();
        }
        let forget_after = proof.timestamp_ms.saturating_add(window_ms);
        match m.seen.entry(proof.nonce.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => None,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((forget_after, Claim::Pending));
                Some(NonceClaim {
                    nonces: self,
                    nonce: proof.nonce.clone(),
                    kept: false,
                })
            }
        }
    }

    /// Records `proof`'s nonce at once; false if it was already used (a replay).
    pub fn first_use(&self, proof: &ClusterProof, now_ms: u64, window_ms: u64) -> bool {
        self.claim(proof, now_ms, window_ms)
            .map(NonceClaim::keep)
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    const WINDOW: u64 = 60_000;
    const INC: u64 = 0x5eed_0000_0000_0001;

    fn check(h: &str, path: &str, me: u64, now: u64) -> Result<ClusterProof, ProofRefusal> {
        checked(h, SECRET, path, me, now)
    }

    /// Both steps, as the receiving middleware takes them.
    fn checked(
        h: &str,
        secret: &[u8],
        path: &str,
        me: u64,
        now: u64,
    ) -> Result<ClusterProof, ProofRefusal> {
        let p = ClusterProof::authentic(h, secret, path)?;
        p.admissible(me, INC, now, WINDOW)?;
        Ok(p)
    }

    #[test]
    fn proof_round_trip() {
        let p = ClusterProof::new(2, INC, 1_000_000, b"{}");
        let h = p.header(SECRET, "/raft/vote");
        assert_eq!(check(&h, "/raft/vote", 2, 1_000_500), Ok(p.clone()));
        assert!(p.matches(b"{}"));
        assert!(!p.matches(b"{ }"));
        assert!(!p.matches(b"{"));
    }

    #[test]
    fn proof_refuses_tampering_staleness_and_other_targets() {
        let h = ClusterProof::new(2, INC, 1_000_000, b"{}").header(SECRET, "/raft/vote");
        assert_eq!(
            check(&h, "/raft/append", 2, 1_000_000),
            Err(ProofRefusal::BadSignature)
        );
        assert_eq!(
            check(&h, "/raft/vote", 3, 1_000_000),
            Err(ProofRefusal::WrongTarget)
        );
        assert_eq!(
            check(&h, "/raft/vote", 2, 2_000_000),
            Err(ProofRefusal::Stale)
        );
        let other = checked(
            &h,
            b"another-secret-of-some-length",
            "/raft/vote",
            2,
            1_000_000,
        );
        assert_eq!(other, Err(ProofRefusal::BadSignature));
        // Any field changed breaks the MAC: here the body length a stranger would enlarge.
        let longer = h.replace("len=2,", "len=64000000,");
        assert_eq!(
            check(&longer, "/raft/vote", 2, 1_000_000),
            Err(ProofRefusal::BadSignature)
        );
        for bad in ["garbage", "", "v2 t=1", "t=1000000,sig=00"] {
            assert_eq!(
                check(bad, "/raft/vote", 2, 1_000_000),
                Err(ProofRefusal::Malformed)
            );
        }
    }

    #[test]
    fn a_proof_for_another_incarnation_of_the_target_is_refused() {
        let p = ClusterProof::new(2, INC, 1_000_000, b"{}");
        let h = p.header(SECRET, "/raft/vote");
        let back = ClusterProof::authentic(&h, SECRET, "/raft/vote").unwrap();
        assert_eq!(back.incarnation, INC);
        assert_eq!(back.admissible(2, INC, 1_000_000, WINDOW), Ok(()));
        // The node restarted: a new incarnation refuses what was made for the old one.
        assert_eq!(
            back.admissible(2, INC + 1, 1_000_000, WINDOW),
            Err(ProofRefusal::OtherIncarnation)
        );
        // The incarnation is signed: changing it breaks the MAC.
        let moved = h.replace(&format!("inc={INC:016x}"), &format!("inc={:016x}", INC + 1));
        assert_eq!(
            ClusterProof::authentic(&moved, SECRET, "/raft/vote"),
            Err(ProofRefusal::BadSignature)
        );
    }

    #[test]
    fn a_stale_proof_is_still_known_authentic_so_its_sender_can_be_told_the_time() {
        let h = ClusterProof::new(2, INC, 1_000_000, b"{}").header(SECRET, "/raft/vote");
        let p = ClusterProof::authentic(&h, SECRET, "/raft/vote").unwrap();
        assert_eq!(
            p.admissible(2, INC, 1_000_000 + 20 * WINDOW, WINDOW),
            Err(ProofRefusal::Stale)
        );
        assert_eq!(
            ClusterProof::authentic(&h, b"a stranger's guess at the secret", "/raft/vote"),
            Err(ProofRefusal::BadSignature)
        );
    }

    #[test]
    fn a_nonce_is_accepted_once_within_the_window() {
        let seen = SeenNonces::default();
        let p = ClusterProof::new(2, INC, 1_000_000, b"{}");
        assert!(seen.first_use(&p, 1_000_000, WINDOW));
        assert!(!seen.first_use(&p, 1_000_001, WINDOW));
        let q = ClusterProof::new(2, INC, 1_000_000, b"{}");
        assert_ne!(p.nonce, q.nonce);
        assert!(seen.first_use(&q, 1_000_000, WINDOW));
        // Nonces out of the window are swept: the map does not grow with traffic.
        for i in 0..5000u64 {
            let r = ClusterProof::new(2, INC, 1_000_000 + i, b"");
            assert!(seen.first_use(&r, 1_000_000 + WINDOW + 10_000, WINDOW));
        }
        assert!(seen.inner.lock().seen.len() <= 2048);
    }

    #[test]
    fn a_nonce_is_used_up_only_by_a_request_that_was_kept() {
        let seen = SeenNonces::default();
        let p = ClusterProof::new(2, INC, 1_000_000, b"{}");
        // Claimed while the body is read: a second request with the same nonce is refused.
        let claim = seen.claim(&p, 1_000_000, WINDOW).unwrap();
        assert!(seen.claim(&p, 1_000_000, WINDOW).is_none());
        // The body did not match: released, the genuine request can still use it.
        drop(claim);
        let claim = seen.claim(&p, 1_000_000, WINDOW).unwrap();
        claim.keep();
        assert!(seen.claim(&p, 1_000_001, WINDOW).is_none());
        assert!(!seen.first_use(&p, 1_000_001, WINDOW));
    }
}
