//! Fuzz target `federation_signature`: a peer site's request, checked as
//! `api::federation::receive` checks it (`sessync_signing::federation::check`: known site, this
//! site as the target, timestamp window, nonce, length and content hash, the HMAC under each of
//! the peer's receive secrets, all before the body; then `Verified::body_matches`), against a
//! config of site `site-b` with one peer (`site-a`) that has two receive secrets (a rotation in
//! progress).
//!
//! Arbitrary headers (the six named ones and `Content-Length` from fuzzed text, plus arbitrary
//! others) and bodies must be refused or accepted without a panic. A request signed with either
//! receive secret (from fuzzed site, target, timestamp, nonce, path and body) must get exactly
//! the verdict the rules give and match only its own body; with a wrong secret, another path,
//! or one byte of a header changed, it must be refused, or, for a header written another way
//! (`0017` for `17`), read as the very same request. The answer signature made for it checks
//! with the secret it was signed with and with nothing else.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sessync_config::{FederationConfig, PeerConfig, Secret};
use sessync_proto::federation::{
    check_nonce, CONTENT_SHA256_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SITE_HEADER,
    TARGET_SITE_HEADER, TIMESTAMP_HEADER,
};
use sessync_proto::SiteName;
use sessync_signing::federation::{
    answer_authentic, check, claimed_site, headers, Rejection, Verified,
};

const OLD: &[u8] = b"old-receive-secret-0123456789abcdef";
const NEW: &[u8] = b"new-receive-secret-0123456789abcdef";
const WRONG: &[u8] = b"not-a-secret-of-this-peer-01234567";
const WINDOW: Duration = Duration::from_secs(300);

fn here() -> &'static SiteName {
    static HERE: OnceLock<SiteName> = OnceLock::new();
    HERE.get_or_init(|| SiteName::parse_field("site-b", "site").expect("a valid site name"))
}

fn config() -> &'static FederationConfig {
    static CONFIG: OnceLock<FederationConfig> = OnceLock::new();
    CONFIG.get_or_init(|| FederationConfig {
        peers: vec![PeerConfig {
            name: SiteName::parse_field("site-a", "name").expect("a valid site name"),
            urls: vec!["http://127.0.0.1:1".to_owned()],
            send_secret: Secret::from_bytes(b"send-secret-0123456789abcdef0123".to_vec()),
            receive_secrets: vec![Secret::from_bytes(OLD), Secret::from_bytes(NEW)],
        }],
        timestamp_window: WINDOW,
        ..FederationConfig::default()
    })
}

/// `pairs` as a header map; pairs that are not a valid header are left out.
fn header_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            h.append(n, v);
        }
    }
    h
}

/// Checks and renders the verdict as the receiving handler does.
fn verdict<'c>(h: &HeaderMap, path: &str, now: u64) -> Result<Verified<'c>, Rejection> {
    let r = check(config(), here(), h, path, now);
    if let Err(e) = &r {
        let _ = (e.reason(), e.message(), claimed_site(h));
    }
    r
}

/// What the rules say of a request signed with a receive secret of `site-a`.
fn expected(site: &str, target: &str, ts: u64, nonce: &str, now: u64) -> Result<(), &'static str> {
    if site != "site-a" {
        return Err("unknown_site");
    }
    if target != "site-b" {
        return Err("wrong_target");
    }
    if ts.abs_diff(now) > WINDOW.as_millis() as u64 {
        return Err("stale_timestamp");
    }
    // A header value that is not visible ASCII cannot be read as text: it counts as missing.
    if HeaderValue::from_str(nonce).map_or(true, |v| v.to_str().is_err()) {
        return Err("missing_header");
    }
    if check_nonce(nonce).is_err() {
        return Err("bad_nonce");
    }
    Ok(())
}

type Input<'a> = (
    [&'a str; 7],                     // the seven headers, as sent
    Vec<(&'a str, &'a [u8])>,         // other headers
    (&'a str, &'a [u8], u64),         // path, body, the receiver's clock
    (&'a str, &'a str, u64, &'a str), // a signed request: site, target, timestamp, nonce
    (bool, usize, u8), // the secret used (old or new); one byte changed: where, to what
);

fuzz_target!(|input: Input<'_>| {
    let (stranger, others, (path, body, now), (site, target, ts, nonce), (old, at, byte)) = input;

    // A stranger's request.
    let names = [
        "content-length",
        SITE_HEADER,
        TARGET_SITE_HEADER,
        TIMESTAMP_HEADER,
        NONCE_HEADER,
        CONTENT_SHA256_HEADER,
        SIGNATURE_HEADER,
    ];
    let pairs = names.into_iter().zip(stranger.map(str::as_bytes));
    if let Ok(v) = verdict(&header_map(pairs.chain(others)), path, now) {
        let _ = v.body_matches(body);
    }

    // A request signed with one of the peer's secrets, if the headers can carry it.
    let (Ok(origin), Ok(to)) = (
        SiteName::parse_field(site, "site"),
        SiteName::parse_field(target, "target"),
    ) else {
        return;
    };
    let secret = if old { OLD } else { NEW };
    let signed: Vec<(&str, String)> = headers(&origin, &to, secret, path, body, ts, nonce).into();
    let h = header_map(signed.iter().map(|(k, v)| (*k, v.as_bytes())));
    if h.len() != signed.len() {
        return;
    }
    match (
        verdict(&h, path, now),
        expected(site, target, ts, nonce, now),
    ) {
        (Ok(v), Ok(())) => {
            assert_eq!(
                (v.origin().as_str(), v.timestamp_ms, v.nonce.as_str()),
                (site, ts, nonce)
            );
            assert!(v.body_matches(body));
            let mut other = body.to_vec();
            other.push(b' ');
            assert!(!v.body_matches(&other));
            let answer = v.sign_answer(200, body);
            assert!(answer_authentic(secret, nonce, 200, body, &answer));
            assert!(!answer_authentic(WRONG, nonce, 200, body, &answer));
            assert!(!answer_authentic(secret, nonce, 201, body, &answer));
        }
        (Err(e), Err(reason)) => assert_eq!(e.reason(), reason),
        (got, want) => panic!("got {got:?}, the rules say {want:?}"),
    }
    if expected(site, target, ts, nonce, now).is_err() {
        return;
    }
    let wrong: Vec<(&str, String)> = headers(&origin, &to, WRONG, path, body, ts, nonce).into();
    let wrong = header_map(wrong.iter().map(|(k, v)| (*k, v.as_bytes())));
    assert_eq!(
        verdict(&wrong, path, now).unwrap_err(),
        Rejection::BadSignature
    );
    let other_path = format!("{path}/");
    assert_eq!(
        verdict(&h, &other_path, now).unwrap_err(),
        Rejection::BadSignature
    );

    // One byte of one header changed.
    let (name, value) = &signed[at % signed.len()];
    let mut bytes = value.as_bytes().to_vec();
    if bytes.is_empty() {
        return;
    }
    let i = (at / signed.len()) % bytes.len();
    bytes[i] = byte;
    let Ok(changed) = HeaderValue::from_bytes(&bytes) else {
        return;
    };
    if bytes == value.as_bytes() {
        return;
    }
    let mut forged = h.clone();
    forged.insert(*name, changed);
    if let Ok(v) = verdict(&forged, path, now) {
        assert_eq!(
            (
                v.origin().as_str(),
                v.timestamp_ms,
                v.nonce.as_str(),
                v.body_len
            ),
            (site, ts, nonce, body.len() as u64),
            "{name}: {:?} passed as another request",
            String::from_utf8_lossy(&bytes)
        );
        assert!(v.body_matches(body));
    }
});
