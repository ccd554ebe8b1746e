//! What rides on a node-to-node exchange besides the request's proof: the sender's report of
//! the receiver's clock ([`ClockNote`], on the request) and the signed answer ([`AnswerNote`]),
//! both bound to the nonce of the request's proof, so neither can be moved to another exchange.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

fn keyed(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length")
}

/// A clock note on a node-to-node request, in [`sessync_proto::wire::CLOCK_HEADER`]: how far
/// the receiver's clock is from the voters' median as the sender measures it. The MAC (cluster
/// secret) covers the note and the nonce of the request's proof, so a note cannot be moved to
/// another exchange. (The answering node's clock rides in the signed answer,
/// [`crate::AnswerNote`].)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockNote {
    /// `report=<ms>`: the receiver's clock minus the voters' median, in ms.
    Report(i64),
}

impl ClockNote {
    fn mac(self, secret: &[u8], nonce: &str) -> HmacSha256 {
        let mut mac = keyed(secret);
        mac.update(format!("sessync-clock-v1\n{nonce}\n{}", self.field()).as_bytes());
        mac
    }

    fn field(self) -> String {
        match self {
            ClockNote::Report(ms) => format!("report={ms}"),
        }
    }

    /// The header value for the exchange whose proof carried `nonce`.
    pub fn header(self, secret: &[u8], nonce: &str) -> String {
        let sig = hex::encode(self.mac(secret, nonce).finalize().into_bytes());
        format!("{},sig={sig}", self.field())
    }

    /// The note in `header`, if it is well formed and signed for the exchange of `nonce`.
    pub fn check(header: &str, secret: &[u8], nonce: &str) -> Option<ClockNote> {
        let (field, sig) = header.split_once(",sig=")?;
        let note = match field.split_once('=')? {
            ("report", v) => ClockNote::Report(v.parse().ok()?),
            _ => return None,
        };
        if sig.len() != 64 {
            return None;
        }
        let sig = hex::decode(sig).ok()?;
        note.mac(secret, nonce).verify_slice(&sig).ok()?;
        Some(note)
    }
}

/// The signed answer to a node-to-node request, in [`sessync_proto::wire::ANSWER_HEADER`]:
/// `v1 t2=<ms>,t3=<ms>,inc=<16 hex>,sig=<hex>`, the MAC (cluster secret) over
/// `sessync-answer-v1\n{nonce}\n{status}\n{t2}\n{t3}\n{inc}\n{hex sha256(body)}`.
///
/// It authenticates the whole answer (the status and the body, refusals included) for the
/// request whose proof carried `nonce`: whoever can answer in a node's place without the
/// cluster secret cannot make a vote grant, a read index or an acknowledgement. It also carries
/// the answering node's clock as NTP's two server timestamps (`t2` when the request arrived,
/// before its handler ran; `t3` when the answer left), and the node's incarnation (see
/// [`crate::ClusterProof`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerNote {
    /// The answering node's wall clock when the request arrived, in ms.
    pub received_ms: u64,
    /// The answering node's wall clock when the answer was sent, in ms.
    pub sent_ms: u64,
    /// The answering node's incarnation.
    pub incarnation: u64,
}

impl AnswerNote {
    fn mac(self, secret: &[u8], nonce: &str, status: u16, body: &[u8]) -> HmacSha256 {
        let mut mac = keyed(secret);
        mac.update(
            format!(
                "sessync-answer-v1\n{nonce}\n{status}\n{}\n{}\n{:016x}\n{}",
                self.received_ms,
                self.sent_ms,
                self.incarnation,
                hex::encode(Sha256::digest(body))
            )
            .as_bytes(),
        );
        mac
    }

    /// The header value for answering `status` with `body` to the request whose proof carried
    /// `nonce`.
    pub fn header(self, secret: &[u8], nonce: &str, status: u16, body: &[u8]) -> String {
        let sig = hex::encode(
            self.mac(secret, nonce, status, body)
                .finalize()
                .into_bytes(),
        );
        format!(
            "v1 t2={},t3={},inc={:016x},sig={sig}",
            self.received_ms, self.sent_ms, self.incarnation
        )
    }

    /// The note in `header`, if it is well formed and signs exactly this answer (`status`,
    /// `body`) to the request of `nonce`; `None` for anything else, which the caller treats as
    /// no answer at all.
    pub fn check(
        header: &str,
        secret: &[u8],
        nonce: &str,
        status: u16,
        body: &[u8],
    ) -> Option<AnswerNote> {
        let rest = header.strip_prefix("v1 ")?;
        let (mut t2, mut t3, mut inc, mut sig) = (None, None, None, None);
        for part in rest.split(',') {
            match part.split_once('=')? {
                ("t2", v) => t2 = v.parse::<u64>().ok(),
                ("t3", v) => t3 = v.parse::<u64>().ok(),
                ("inc", v) if v.len() == 16 => inc = u64::from_str_radix(v, 16).ok(),
                ("sig", v) if v.len() == 64 => sig = hex::decode(v).ok(),
                _ => return None,
            }
        }
        let note = AnswerNote {
            received_ms: t2?,
            sent_ms: t3?,
            incarnation: inc?,
        };
        note.mac(secret, nonce, status, body)
            .verify_slice(&sig?)
            .ok()?;
        Some(note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn clock_reports_are_bound_to_the_secret_and_the_exchange() {
        for note in [
            ClockNote::Report(-180_000),
            ClockNote::Report(i64::MIN),
            ClockNote::Report(i64::MAX),
        ] {
            let h = note.header(SECRET, "ab12");
            assert_eq!(ClockNote::check(&h, SECRET, "ab12"), Some(note));
            assert_eq!(
                ClockNote::check(&h, SECRET, "ab13"),
                None,
                "another exchange"
            );
            assert_eq!(ClockNote::check(&h, b"other secret", "ab12"), None);
        }
        let h = ClockNote::Report(5).header(SECRET, "n");
        assert_eq!(
            ClockNote::check(&h.replace("report=5", "report=6"), SECRET, "n"),
            None
        );
        for bad in [
            "",
            "report=1",
            "report=x,sig=00",
            "then=1,sig=00",
            "report=99999999999999999999,sig=00",
        ] {
            assert_eq!(ClockNote::check(bad, SECRET, "n"), None);
        }
    }

    #[test]
    fn an_answer_note_signs_the_status_the_body_and_the_exchange() {
        let note = AnswerNote {
            received_ms: 1_700_000_000_000,
            sent_ms: 1_700_000_000_007,
            incarnation: 0xdead_beef_0000_0001,
        };
        let body = br#"{"Ok":{"vote_granted":true}}"#;
        let h = note.header(SECRET, "n1", 200, body);
        assert_eq!(AnswerNote::check(&h, SECRET, "n1", 200, body), Some(note));
        // Any part of the answer changed, or another exchange, or another secret: nothing.
        assert_eq!(AnswerNote::check(&h, SECRET, "n2", 200, body), None);
        assert_eq!(AnswerNote::check(&h, SECRET, "n1", 503, body), None);
        assert_eq!(AnswerNote::check(&h, SECRET, "n1", 200, b"{}"), None);
        assert_eq!(AnswerNote::check(&h, b"a guess", "n1", 200, body), None);
        let later = h.replace("t3=1700000000007", "t3=1700000000008");
        assert_eq!(AnswerNote::check(&later, SECRET, "n1", 200, body), None);
        for bad in [
            "",
            "v1 t2=1,t3=2,sig=00",
            "v1 t2=1,t3=2,inc=0000000000000001",
            "v0 t2=1,t3=2,inc=0000000000000001,sig=00",
            "v1 t2=18446744073709551616,t3=2,inc=0000000000000001,sig=00",
        ] {
            assert_eq!(
                AnswerNote::check(bad, SECRET, "n1", 200, body),
                None,
                "{bad}"
            );
        }
        // Extreme clocks are carried as they are (the caller saturates its arithmetic).
        let extreme = AnswerNote {
            received_ms: u64::MAX,
            sent_ms: 0,
            incarnation: u64::MAX,
        };
        let h = extreme.header(SECRET, "n1", 200, b"");
        assert_eq!(AnswerNote::check(&h, SECRET, "n1", 200, b""), Some(extreme));
    }
}
