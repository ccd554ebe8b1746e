//! The signed headers of a request between sites, made and checked.
//!
//! The signature is [`crate::Signed`] (HMAC-SHA256 over
//! `v1\nPOST\n{path}\n{timestamp_ms}\n{nonce}\n{hex sha256(body)}`) under the secret the two
//! sites share for that direction. The receiver checks, in this order: the site is a configured
//! peer, the timestamp is inside the window, the nonce is well formed, and the signature matches
//! one of the peer's receive secrets (constant-time). Whether the nonce was seen before is for
//! the replicated state to say.

use http::HeaderMap;
use sessync_config::{FederationConfig, PeerConfig};
use sessync_proto::federation::{
    check_nonce, NONCE_HEADER, SIGNATURE_HEADER, SITE_HEADER, TIMESTAMP_HEADER,
};
use sessync_proto::SiteName;

use crate::Signed;

/// The four headers of a signed request, as (name, value) pairs.
pub fn headers(
    own_site: &SiteName,
    secret: &[u8],
    path: &str,
    body: &[u8],
    timestamp_ms: u64,
    nonce: &str,
) -> [(&'static str, String); 4] {
    let signature = Signed {
        method: "POST",
        path,
        timestamp_ms,
        nonce,
        body,
    }
    .sign(secret);
    [
        (SITE_HEADER, own_site.to_string()),
        (TIMESTAMP_HEADER, timestamp_ms.to_string()),
        (NONCE_HEADER, nonce.to_owned()),
        (SIGNATURE_HEADER, signature),
    ]
}

/// A request whose signature checked out.
#[derive(Debug)]
pub struct Verified {
    pub origin: SiteName,
    pub timestamp_ms: u64,
    pub nonce: String,
}

/// Why a peer request was refused (always 401, nothing changed).
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    MissingHeader(&'static str),
    UnknownSite(String),
    BadTimestamp,
    StaleTimestamp { skew_ms: u64, window_ms: u64 },
    BadNonce(String),
    BadSignature,
}

impl Rejection {
    /// A short name for audit events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::MissingHeader(_) => "missing_header",
            Rejection::UnknownSite(_) => "unknown_site",
            Rejection::BadTimestamp | Rejection::StaleTimestamp { .. } => "stale_timestamp",
            Rejection::BadNonce(_) => "bad_nonce",
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
            Rejection::BadTimestamp => {
                format!("{TIMESTAMP_HEADER} must be Unix time in milliseconds")
            }
            Rejection::StaleTimestamp { skew_ms, window_ms } => format!(
                "{TIMESTAMP_HEADER} is {skew_ms} ms away from this node's clock; the window is {window_ms} ms"
            ),
            Rejection::BadNonce(why) => format!("{NONCE_HEADER} {why}"),
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

/// The site a request claims to come from, for reporting a refusal.
pub fn claimed_site(h: &HeaderMap) -> String {
    let s = header(h, SITE_HEADER).unwrap_or("-");
    s.chars().take(64).collect()
}

/// A request's signed headers, well formed and from a configured peer inside the window; the
/// signature not yet checked against the body.
#[derive(Debug)]
pub struct Claimed<'h> {
    pub peer: &'h PeerConfig,
    pub timestamp_ms: u64,
    pub nonce: &'h str,
    pub signature: &'h str,
}

/// The checks that need no body, in order: a configured site, a fresh timestamp, a well-formed
/// nonce, a well-formed signature (64 hex digits). A receiver runs them before reading the
/// body; [`check`] runs them again with the signature.
pub fn check_headers<'h>(
    config: &'h FederationConfig,
    h: &'h HeaderMap,
    now_ms: u64,
) -> Result<Claimed<'h>, Rejection> {
    let site = header(h, SITE_HEADER)?;
    let peer = SiteName::parse_field(site, SITE_HEADER)
        .ok()
        .and_then(|s| config.peer(&s))
        .ok_or_else(|| Rejection::UnknownSite(site.chars().take(64).collect()))?;
    let timestamp_ms: u64 = header(h, TIMESTAMP_HEADER)?
        .parse()
        .map_err(|_| Rejection::BadTimestamp)?;
    let window_ms = config.timestamp_window.as_millis() as u64;
    let skew_ms = timestamp_ms.abs_diff(now_ms);
    if skew_ms > window_ms {
        return Err(Rejection::StaleTimestamp { skew_ms, window_ms });
    }
    let nonce = header(h, NONCE_HEADER)?;
    check_nonce(nonce).map_err(|e| Rejection::BadNonce(e.reason))?;
    let signature = header(h, SIGNATURE_HEADER)?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Rejection::BadSignature);
    }
    Ok(Claimed {
        peer,
        timestamp_ms,
        nonce,
        signature,
    })
}

/// Checks a peer request's headers and signature against the configured peers.
pub fn check(
    config: &FederationConfig,
    h: &HeaderMap,
    path: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<Verified, Rejection> {
    let claimed = check_headers(config, h, now_ms)?;
    let signed = Signed {
        method: "POST",
        path,
        timestamp_ms: claimed.timestamp_ms,
        nonce: claimed.nonce,
        body,
    };
    // Every secret is tried, so the time taken does not tell which one matched.
    let matched = claimed.peer.receive_secrets.iter().fold(false, |ok, s| {
        signed.verify(s.expose(), claimed.signature) | ok
    });
    if !matched {
        return Err(Rejection::BadSignature);
    }
    Ok(Verified {
        origin: claimed.peer.name.clone(),
        timestamp_ms: claimed.timestamp_ms,
        nonce: claimed.nonce.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use sessync_config::NodeConfig;

    const PATH: &str = "/v1/federation/invalidate";
    const BODY: &[u8] = br#"{"op_id":"op_1","origin_site":"site-a","user_id":"alice"}"#;
    const NOW: u64 = 1_800_000_000_000;

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

    fn signed(secret: &str, ts: u64, nonce: &str, body: &[u8]) -> HeaderMap {
        let site = SiteName::parse_field("site-a", "site").unwrap();
        let mut h = HeaderMap::new();
        for (k, v) in headers(&site, secret.as_bytes(), PATH, body, ts, nonce) {
            h.insert(k, HeaderValue::from_str(&v).unwrap());
        }
        h
    }

    /// The worked example of docs/federation.md gives this signature; a peer written in another
    /// language checks its code against it.
    #[test]
    fn the_documented_worked_example_holds() {
        let ex: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/federation-example.json")).unwrap();
        let s = |k: &str| ex[k].as_str().unwrap().to_owned();
        let body = s("body");
        let signed = Signed {
            method: "POST",
            path: &s("path"),
            timestamp_ms: ex["timestamp_ms"].as_u64().unwrap(),
            nonce: &s("nonce"),
            body: body.as_bytes(),
        };
        assert_eq!(signed.sign(s("secret").as_bytes()), s("signature"));
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(body.as_bytes())),
            s("body_sha256")
        );
    }

    const OLD: &str = "old-secret-0123456789abcdef012345";
    const NEW: &str = "new-secret-0123456789abcdef012345";

    #[test]
    fn accepts_either_receive_secret() {
        let c = config(&[OLD, NEW]);
        for s in [OLD, NEW] {
            let v = check(&c, &signed(s, NOW, "n1", BODY), PATH, BODY, NOW).unwrap();
            assert_eq!(v.origin.as_str(), "site-a");
            assert_eq!(v.nonce, "n1");
        }
    }

    #[test]
    fn refuses_what_it_should() {
        let c = config(&[OLD]);
        let ok = signed(OLD, NOW, "n1", BODY);
        let refuse = |h: &HeaderMap, path: &str, body: &[u8]| check(&c, h, path, body, NOW);
        assert_eq!(
            refuse(&signed(NEW, NOW, "n1", BODY), PATH, BODY).unwrap_err(),
            Rejection::BadSignature
        );
        assert_eq!(
            refuse(&ok, PATH, b"{}").unwrap_err(),
            Rejection::BadSignature
        );
        assert_eq!(
            refuse(&ok, "/v1/federation/verify", BODY).unwrap_err(),
            Rejection::BadSignature
        );
        let stale = signed(OLD, NOW - 301_000, "n1", BODY);
        assert_eq!(
            refuse(&stale, PATH, BODY).unwrap_err().reason(),
            "stale_timestamp"
        );
        let mut other = ok.clone();
        other.insert(SITE_HEADER, HeaderValue::from_static("site-z"));
        assert_eq!(
            refuse(&other, PATH, BODY).unwrap_err().reason(),
            "unknown_site"
        );
        let mut bad = ok.clone();
        bad.insert(NONCE_HEADER, HeaderValue::from_static("a b"));
        assert_eq!(refuse(&bad, PATH, BODY).unwrap_err().reason(), "bad_nonce");
        let mut none = ok.clone();
        none.remove(SIGNATURE_HEADER);
        assert_eq!(
            refuse(&none, PATH, BODY).unwrap_err().reason(),
            "missing_header"
        );
        let mut altered_nonce = ok;
        altered_nonce.insert(NONCE_HEADER, HeaderValue::from_static("n2"));
        assert_eq!(
            refuse(&altered_nonce, PATH, BODY).unwrap_err(),
            Rejection::BadSignature
        );
    }

    /// The body-free checks pass a well-signed request's headers as they are and refuse a
    /// signature that is not 64 hex digits before any body is looked at.
    #[test]
    fn headers_are_checked_without_the_body() {
        let c = config(&[OLD]);
        let ok = signed(OLD, NOW, "n1", BODY);
        let claimed = check_headers(&c, &ok, NOW).unwrap();
        assert_eq!(claimed.peer.name.as_str(), "site-a");
        assert_eq!((claimed.timestamp_ms, claimed.nonce), (NOW, "n1"));
        let mut short = ok;
        short.insert(SIGNATURE_HEADER, HeaderValue::from_static("abc"));
        assert_eq!(
            check_headers(&c, &short, NOW).unwrap_err(),
            Rejection::BadSignature
        );
    }
}
