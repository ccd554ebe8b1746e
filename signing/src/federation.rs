//! The signed headers of a request between sites, made and checked, and the signature on the
//! answer.
//!
//! A request's signature ([`PeerSigned`]) is HMAC-SHA256, under the secret the two sites share
//! for that direction, of
//! `sessync-peer-v2\nPOST\n{path}\n{origin}\n{target}\n{timestamp_ms}\n{nonce}\n{body length}\n{hex sha256(body)}`.
//! It names both sites, so a request meant for one peer is refused by another even when they
//! were (wrongly) given one secret, and it covers the body's length and hash, so the receiver
//! checks it in full before reading a byte of the body ([`check`]) and then only compares the
//! body it reads with the hash ([`Verified::body_matches`]). The receiver checks, in this
//! order: the site is a configured peer, the target is this site, the timestamp is inside the
//! window, the nonce, length and hash are well formed, and the signature matches one of the
//! peer's receive secrets (constant-time). Whether the nonce was seen before is for the
//! replicated state to say.
//!
//! Every answer to a request that passed [`check`] carries [`answer_signature`] under the secret
//! that matched, over the request's nonce, the status and the answer body's hash: the sender
//! believes an acknowledgement only with it ([`answer_authentic`]), so whoever can answer in
//! the peer's place cannot drop an entry from the outbox.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sessync_config::{FederationConfig, PeerConfig};
use sessync_proto::federation::{
    check_nonce, CONTENT_SHA256_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SITE_HEADER,
    TARGET_SITE_HEADER, TIMESTAMP_HEADER,
};
use sessync_proto::SiteName;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// What a request's signature covers.
#[derive(Debug)]
pub struct PeerSigned<'a> {
    pub path: &'a str,
    pub origin: &'a str,
    pub target: &'a str,
    pub timestamp_ms: u64,
    pub nonce: &'a str,
    pub body_len: u64,
    /// Lowercase hex SHA-256 of the body.
    pub body_sha256: &'a str,
}

impl PeerSigned<'_> {
    fn mac(&self, secret: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(
            format!(
                "sessync-peer-v2\nPOST\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
                self.path,
                self.origin,
                self.target,
                self.timestamp_ms,
                self.nonce,
                self.body_len,
                self.body_sha256
            )
            .as_bytes(),
        );
        mac
    }

    /// The signature as lowercase hex.
    pub fn sign(&self, secret: &[u8]) -> String {
        hex::encode(self.mac(secret).finalize().into_bytes())
    }

    /// Whether `signature_hex` is this request's signature under `secret`, compared in
    /// constant time.
    pub fn verify(&self, secret: &[u8], signature_hex: &str) -> bool {
        let Ok(sig) = hex::decode(signature_hex) else {
            return false;
        };
        self.mac(secret).verify_slice(&sig).is_ok()
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The headers of a signed request from `origin` to `target`, as (name, value) pairs:
/// `Content-Length` and the six of [`sessync_proto::federation`].
pub fn headers(
    origin: &SiteName,
    target: &SiteName,
    secret: &[u8],
    path: &str,
    body: &[u8],
    timestamp_ms: u64,
    nonce: &str,
) -> [(&'static str, String); 7] {
    let body_sha256 = sha256_hex(body);
    let signature = PeerSigned {
        path,
        origin: origin.as_str(),
        target: target.as_str(),
        timestamp_ms,
        nonce,
        body_len: body.len() as u64,
        body_sha256: &body_sha256,
    }
    .sign(secret);
    [
        ("content-length", body.len().to_string()),
        (SITE_HEADER, origin.to_string()),
        (TARGET_SITE_HEADER, target.to_string()),
        (TIMESTAMP_HEADER, timestamp_ms.to_string()),
        (NONCE_HEADER, nonce.to_owned()),
        (CONTENT_SHA256_HEADER, body_sha256),
        (SIGNATURE_HEADER, signature),
    ]
}

/// A request whose headers and signature checked out; its body is still to be compared.
#[derive(Debug)]
pub struct Verified<'c> {
    pub peer: &'c PeerConfig,
    pub timestamp_ms: u64,
    pub nonce: String,
    /// The body's length, as signed.
    pub body_len: u64,
    body_sha256: [u8; 32],
    /// Which of the peer's receive secrets matched: the answer is signed with it.
    secret_index: usize,
}

impl Verified<'_> {
    /// The sending site.
    pub fn origin(&self) -> &SiteName {
        &self.peer.name
    }

    /// Whether `body` is the body that was signed.
    pub fn body_matches(&self, body: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        body.len() as u64 == self.body_len
            && bool::from(Sha256::digest(body).as_slice().ct_eq(&self.body_sha256))
    }

    /// The signature for an answer with `status` and `body` to this request.
    pub fn sign_answer(&self, status: u16, body: &[u8]) -> String {
        let secret = self.peer.receive_secrets[self.secret_index].expose();
        answer_signature(secret, &self.nonce, status, body)
    }
}

/// Why a peer request was refused (always 401, nothing changed).
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    MissingHeader(&'static str),
    UnknownSite(String),
    /// Signed for another site than this one.
    WrongTarget(String),
    BadTimestamp,
    StaleTimestamp {
        skew_ms: u64,
        window_ms: u64,
    },
    BadNonce(String),
    /// `Content-Length` missing, not a number, or the body not the length announced.
    BadLength,
    /// The content hash header is not 64 hex digits, or the body read does not match it.
    BadContentHash,
    BadSignature,
}

impl Rejection {
    /// A short name for audit events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::MissingHeader(_) => "missing_header",
            Rejection::UnknownSite(_) => "unknown_site",
            Rejection::WrongTarget(_) => "wrong_target",
            Rejection::BadTimestamp | Rejection::StaleTimestamp { .. } => "stale_timestamp",
            Rejection::BadNonce(_) => "bad_nonce",
            Rejection::BadLength => "bad_length",
            Rejection::BadContentHash => "bad_content_hash",
            Rejection::BadSignature => "bad_signature",
        }
    }

    /// A sentence for the 401 answer.
    pub fn message(&self) -> String {
        match self {
            Rejection::MissingHeader(h) => format!("the {h} header is missing"),
            Rejection::UnknownSite(s) => {
                format!("site {s:?} is not a configured peer of this site")
            }
            Rejection::WrongTarget(s) => format!(
                "{TARGET_SITE_HEADER} is {s:?}: the request is signed for another site than this one"
            ),
            Rejection::BadTimestamp => {
                format!("{TIMESTAMP_HEADER} must be Unix time in milliseconds")
            }
            Rejection::StaleTimestamp { skew_ms, window_ms } => format!(
                "{TIMESTAMP_HEADER} is {skew_ms} ms away from this node's clock; the window is {window_ms} ms"
            ),
            Rejection::BadNonce(why) => format!("{NONCE_HEADER} {why}"),
            Rejection::BadLength => {
                "Content-Length must be given, and the body must be that long".to_owned()
            }
            Rejection::BadContentHash => format!(
                "{CONTENT_SHA256_HEADER} must be the SHA-256 of the body, as 64 hex digits"
            ),
            Rejection::BadSignature => format!(
                "{SIGNATURE_HEADER} does not match the request under any secret configured for this peer"
            ),
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &'static str) -> Result<&'a str, Rejection> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(Rejection::MissingHeader(name))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The site a request claims to come from, for reporting a refusal.
pub fn claimed_site(h: &HeaderMap) -> String {
    let s = header(h, SITE_HEADER).unwrap_or("-");
    s.chars().take(64).collect()
}

/// Checks a peer request's headers and signature, all before its body is read: a configured
/// site, this site as the target, a fresh timestamp, a well-formed nonce, length and content
/// hash, and the signature under one of the peer's receive secrets (each tried, so the time
/// taken does not tell which matched).
pub fn check<'c>(
    config: &'c FederationConfig,
    own_site: &SiteName,
    h: &HeaderMap,
    path: &str,
    now_ms: u64,
) -> Result<Verified<'c>, Rejection> {
    let site = header(h, SITE_HEADER)?;
    let peer = SiteName::parse_field(site, SITE_HEADER)
        .ok()
        .and_then(|s| config.peer(&s))
        .ok_or_else(|| Rejection::UnknownSite(site.chars().take(64).collect()))?;
    let target = header(h, TARGET_SITE_HEADER)?;
    if target != own_site.as_str() {
        return Err(Rejection::WrongTarget(target.chars().take(64).collect()));
    }
    let timestamp_ms: u64 = header(h, TIMESTAMP_HEADER)?
        .parse()
        .map_err(|_| Rejection::BadTimestamp)?;
    let window_ms = u64::try_from(config.timestamp_window.as_millis()).unwrap_or(u64::MAX);
    let skew_ms = timestamp_ms.abs_diff(now_ms);
    if skew_ms > window_ms {
        return Err(Rejection::StaleTimestamp { skew_ms, window_ms });
    }
    let nonce = header(h, NONCE_HEADER)?;
    check_nonce(nonce).map_err(|e| Rejection::BadNonce(e.reason))?;
    let body_len: u64 = header(h, "content-length")?
        .parse()
        .map_err(|_| Rejection::BadLength)?;
    let body_sha256 = header(h, CONTENT_SHA256_HEADER)?;
    let mut hash = [0u8; 32];
    if !is_hex64(body_sha256) || hex::decode_to_slice(body_sha256, &mut hash).is_err() {
        return Err(Rejection::BadContentHash);
    }
    let signature = header(h, SIGNATURE_HEADER)?;
    if !is_hex64(signature) {
        return Err(Rejection::BadSignature);
    }
    let signed = PeerSigned {
        path,
        origin: peer.name.as_str(),
        target,
        timestamp_ms,
        nonce,
        body_len,
        body_sha256,
    };
    let mut matched = None;
    for (i, s) in peer.receive_secrets.iter().enumerate() {
        if signed.verify(s.expose(), signature) && matched.is_none() {
            matched = Some(i);
        }
    }
    let secret_index = matched.ok_or(Rejection::BadSignature)?;
    Ok(Verified {
        peer,
        timestamp_ms,
        nonce: nonce.to_owned(),
        body_len,
        body_sha256: hash,
        secret_index,
    })
}

fn answer_mac(secret: &[u8], nonce: &str, status: u16, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(
        format!(
            "sessync-peer-answer-v2\n{nonce}\n{status}\n{}",
            sha256_hex(body)
        )
        .as_bytes(),
    );
    mac
}

/// The signature of an answer with `status` and `body` to the request that carried `nonce`,
/// under the secret that request was signed with, as lowercase hex.
pub fn answer_signature(secret: &[u8], nonce: &str, status: u16, body: &[u8]) -> String {
    hex::encode(
        answer_mac(secret, nonce, status, body)
            .finalize()
            .into_bytes(),
    )
}

/// Whether `signature_hex` signs this answer to the request that carried `nonce` (constant
/// time): what the sender checks before it believes an answer.
pub fn answer_authentic(
    secret: &[u8],
    nonce: &str,
    status: u16,
    body: &[u8],
    signature_hex: &str,
) -> bool {
    let Ok(sig) = hex::decode(signature_hex) else {
        return false;
    };
    answer_mac(secret, nonce, status, body)
        .verify_slice(&sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use sessync_config::NodeConfig;

    const PATH: &str = "/v1/federation/invalidate";
    const BODY: &[u8] = br#"{"op_id":"op_1","origin_site":"site-a","user_id":"alice"}"#;
    const NOW: u64 = 1_800_000_000_000;

    fn site(s: &str) -> SiteName {
        SiteName::parse_field(s, "site").unwrap()
    }

    /// Site B's federation config: one peer, site-a, with these receive secrets.
    fn config(receive: &[&str]) -> FederationConfig {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, s) in receive.iter().enumerate() {
            let p = dir.path().join(format!("r{i}"));
            std::fs::write(&p, s).unwrap();
            files.push(format!("{:?}", p.to_str().unwrap()));
        }
        let send = dir.path().join("send");
        std::fs::write(&send, "send-secret-0123456789abcdef0123").unwrap();
        std::fs::write(dir.path().join("cluster"), "c".repeat(32)).unwrap();
        let toml = format!(
            "node_id = 1\nsite = \"site-b\"\nlisten = \"127.0.0.1:1\"\ndata_dir = {:?}\n\
             cluster_secret_file = {:?}\n[[federation.peers]]\nname = \"site-a\"\n\
             urls = [\"http://127.0.0.1:2\"]\nsend_secret_file = {:?}\nreceive_secret_files = [{}]\n",
            dir.path().join("data").to_str().unwrap(),
            dir.path().join("cluster").to_str().unwrap(),
            send.to_str().unwrap(),
            files.join(", ")
        );
        let c = NodeConfig::from_toml_str(&toml, dir.path(), &[]).unwrap();
        c.federation
    }

    fn signed_for(target: &str, secret: &str, ts: u64, nonce: &str, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in headers(
            &site("site-a"),
            &site(target),
            secret.as_bytes(),
            PATH,
            body,
            ts,
            nonce,
        ) {
            h.insert(k, HeaderValue::from_str(&v).unwrap());
        }
        h
    }

    fn signed(secret: &str, ts: u64, nonce: &str, body: &[u8]) -> HeaderMap {
        signed_for("site-b", secret, ts, nonce, body)
    }

    fn check_at_b<'c>(
        c: &'c FederationConfig,
        h: &HeaderMap,
        path: &str,
    ) -> Result<Verified<'c>, Rejection> {
        check(c, &site("site-b"), h, path, NOW)
    }

    /// The worked example of docs/federation.md gives these signatures; a peer written in
    /// another language checks its code against it.
    #[test]
    fn the_documented_worked_example_holds() {
        let ex: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/federation-example.json")).unwrap();
        let s = |k: &str| ex[k].as_str().unwrap().to_owned();
        let body = s("body");
        assert_eq!(sha256_hex(body.as_bytes()), s("body_sha256"));
        assert_eq!(ex["body_length"].as_u64().unwrap(), body.len() as u64);
        let made = headers(
            &site(&s("origin_site")),
            &site(&s("target_site")),
            s("secret").as_bytes(),
            &s("path"),
            body.as_bytes(),
            ex["timestamp_ms"].as_u64().unwrap(),
            &s("nonce"),
        );
        let sig = made.iter().find(|(k, _)| *k == SIGNATURE_HEADER).unwrap();
        assert_eq!(sig.1, s("signature"));
        let status = ex["answer_status"].as_u64().unwrap() as u16;
        let answer = answer_signature(
            s("secret").as_bytes(),
            &s("nonce"),
            status,
            s("answer_body").as_bytes(),
        );
        assert_eq!(answer, s("answer_signature"));
    }

    const OLD: &str = "old-secret-0123456789abcdef012345";
    const NEW: &str = "new-secret-0123456789abcdef012345";

    #[test]
    fn accepts_either_receive_secret_and_answers_with_the_one_that_matched() {
        let c = config(&[OLD, NEW]);
        for s in [OLD, NEW] {
            let v = check_at_b(&c, &signed(s, NOW, "n1", BODY), PATH).unwrap();
            assert_eq!(v.origin().as_str(), "site-a");
            assert_eq!(v.nonce, "n1");
            assert!(v.body_matches(BODY));
            let answer = v.sign_answer(200, b"{}");
            assert!(answer_authentic(s.as_bytes(), "n1", 200, b"{}", &answer));
        }
    }

    /// Item: an answer is believed only with the peer's signature over the request's nonce,
    /// the status and the body; a forged or replayed acknowledgement is not.
    #[test]
    fn a_forged_or_altered_answer_is_not_authentic() {
        let sig = answer_signature(OLD.as_bytes(), "n1", 200, b"{\"applied\":true}");
        assert!(answer_authentic(
            OLD.as_bytes(),
            "n1",
            200,
            b"{\"applied\":true}",
            &sig
        ));
        for (secret, nonce, status, body) in [
            (NEW, "n1", 200, &b"{\"applied\":true}"[..]),
            (OLD, "n2", 200, &b"{\"applied\":true}"[..]),
            (OLD, "n1", 201, &b"{\"applied\":true}"[..]),
            (OLD, "n1", 200, &b"{\"applied\":false}"[..]),
        ] {
            assert!(!answer_authentic(
                secret.as_bytes(),
                nonce,
                status,
                body,
                &sig
            ));
        }
        assert!(!answer_authentic(OLD.as_bytes(), "n1", 200, b"{}", "zz"));
    }

    #[test]
    fn refuses_what_it_should() {
        let c = config(&[OLD]);
        let ok = signed(OLD, NOW, "n1", BODY);
        let refuse = |h: &HeaderMap, path: &str| check_at_b(&c, h, path);
        assert_eq!(
            refuse(&signed(NEW, NOW, "n1", BODY), PATH).unwrap_err(),
            Rejection::BadSignature
        );
        assert_eq!(
            refuse(&ok, "/v1/federation/verify").unwrap_err(),
            Rejection::BadSignature
        );
        let stale = signed(OLD, NOW - 301_000, "n1", BODY);
        assert_eq!(
            refuse(&stale, PATH).unwrap_err().reason(),
            "stale_timestamp"
        );
        let mut other = ok.clone();
        other.insert(SITE_HEADER, HeaderValue::from_static("site-z"));
        assert_eq!(refuse(&other, PATH).unwrap_err().reason(), "unknown_site");
        let mut bad = ok.clone();
        bad.insert(NONCE_HEADER, HeaderValue::from_static("a b"));
        assert_eq!(refuse(&bad, PATH).unwrap_err().reason(), "bad_nonce");
        let mut none = ok.clone();
        none.remove(SIGNATURE_HEADER);
        assert_eq!(refuse(&none, PATH).unwrap_err().reason(), "missing_header");
        let mut altered_nonce = ok.clone();
        altered_nonce.insert(NONCE_HEADER, HeaderValue::from_static("n2"));
        assert_eq!(
            refuse(&altered_nonce, PATH).unwrap_err(),
            Rejection::BadSignature
        );
        // The body's length and hash are signed: announcing another body is refused.
        let mut longer = ok.clone();
        longer.insert("content-length", HeaderValue::from_static("4000"));
        assert_eq!(refuse(&longer, PATH).unwrap_err(), Rejection::BadSignature);
        let mut other_hash = ok.clone();
        other_hash.insert(
            CONTENT_SHA256_HEADER,
            HeaderValue::from_str(&sha256_hex(b"{}")).unwrap(),
        );
        assert_eq!(
            refuse(&other_hash, PATH).unwrap_err(),
            Rejection::BadSignature
        );
        let mut no_length = ok.clone();
        no_length.remove("content-length");
        assert_eq!(
            refuse(&no_length, PATH).unwrap_err().reason(),
            "missing_header"
        );
        let mut bad_hash = ok;
        bad_hash.insert(CONTENT_SHA256_HEADER, HeaderValue::from_static("abc"));
        assert_eq!(
            refuse(&bad_hash, PATH).unwrap_err(),
            Rejection::BadContentHash
        );
    }

    /// Item 7: the signed string names the target, so a request site A signed for site B is
    /// refused at site C, even when C was given the same secret for A.
    #[test]
    fn a_request_signed_for_one_peer_is_refused_by_another() {
        let c = config(&[OLD]);
        let for_c = signed_for("site-c", OLD, NOW, "n1", BODY);
        assert_eq!(
            check_at_b(&c, &for_c, PATH).unwrap_err().reason(),
            "wrong_target"
        );
        // Relabelled as meant for B: the signature no longer fits.
        let mut relabelled = for_c;
        relabelled.insert(TARGET_SITE_HEADER, HeaderValue::from_static("site-b"));
        assert_eq!(
            check_at_b(&c, &relabelled, PATH).unwrap_err(),
            Rejection::BadSignature
        );
    }

    /// Item 5: everything, the signature included, is checked from the headers; the body read
    /// afterwards must be the one signed.
    #[test]
    fn the_signature_is_checked_before_the_body_and_the_body_must_match_it() {
        let c = config(&[OLD]);
        let v = check_at_b(&c, &signed(OLD, NOW, "n1", BODY), PATH).unwrap();
        assert_eq!(v.body_len, BODY.len() as u64);
        assert!(v.body_matches(BODY));
        let mut other = BODY.to_vec();
        other[3] ^= 1;
        assert!(!v.body_matches(&other));
        assert!(!v.body_matches(&BODY[..BODY.len() - 1]));
    }
}
