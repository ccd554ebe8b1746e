//! Fuzz target `federation_signature`: a peer site's request, checked as
//! `api::federation::receive` checks it (`sessync_signing::federation::check`: known site,
//! timestamp window, nonce shape, the HMAC under each of the peer's receive secrets), against a
//! config with one peer (`site-a`) that has two receive secrets (a rotation in progress).
//!
//! Arbitrary headers (the four named ones from fuzzed text, plus arbitrary others) and bodies
//! must be refused or accepted without a panic. A request signed with either receive secret
//! (from fuzzed site, timestamp, nonce, path and body) must get exactly the verdict the rules
//! give; with a wrong secret, another path or another body, or one byte of a header changed,
//! it must be refused, or, for a header written another way (`0017` for `17`), read as the
//! very same request.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sessync_config::{FederationConfig, PeerConfig, Secret};
use sessync_proto::federation::{
    check_nonce, NONCE_HEADER, SIGNATURE_HEADER, SITE_HEADER, TIMESTAMP_HEADER,
};
use sessync_proto::SiteName;
use sessync_signing::federation::{check, claimed_site, headers, Rejection, Verified};

const OLD: &[u8] = b"old-receive-secret-0123456789abcdef";
const NEW: &[u8] = b"new-receive-secret-0123456789abcdef";
const WRONG: &[u8] = b"not-a-secret-of-this-peer-01234567";
const WINDOW: Duration = Duration::from_secs(300);

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
fn verdict(h: &HeaderMap, path: &str, body: &[u8], now: u64) -> Result<Verified, Rejection> {
    let r = check(config(), h, path, body, now);
    if let Err(e) = &r {
        let _ = (e.reason(), e.message(), claimed_site(h));
    }
    r
}

/// What the rules say of a request signed with a receive secret of `site-a`.
fn expected(site: &str, ts: u64, nonce: &str, now: u64) -> Result<(), &'static str> {
    if site != "site-a" {
        return Err("unknown_site");
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
    [&'a str; 4],             // site, timestamp, nonce and signature headers, as sent
    Vec<(&'a str, &'a [u8])>, // other headers
    (&'a str, &'a [u8], u64), // path, body, the receiver's clock
    (&'a str, u64, &'a str),  // a signed request: site, timestamp, nonce
    (bool, usize, u8),        // the secret used (old or new); one byte changed: where, to what
);

fuzz_target!(|input: Input<'_>| {
    let (stranger, others, (path, body, now), (site, ts, nonce), (old, at, byte)) = input;

    // A stranger's request.
    let names = [
        SITE_HEADER,
        TIMESTAMP_HEADER,
        NONCE_HEADER,
        SIGNATURE_HEADER,
    ];
    let pairs = names.into_iter().zip(stranger.map(str::as_bytes));
    let _ = verdict(&header_map(pairs.chain(others)), path, body, now);

    // A request signed with one of the peer's secrets, if the headers can carry it.
    let Ok(origin) = SiteName::parse_field(site, "site") else {
        return;
    };
    let secret = if old { OLD } else { NEW };
    let signed: Vec<(&str, String)> = headers(&origin, secret, path, body, ts, nonce).into();
    let h = header_map(signed.iter().map(|(k, v)| (*k, v.as_bytes())));
    if h.len() != 4 {
        return;
    }
    match (verdict(&h, path, body, now), expected(site, ts, nonce, now)) {
        (Ok(v), Ok(())) => {
            assert_eq!(
                (v.origin.as_str(), v.timestamp_ms, v.nonce.as_str()),
                (site, ts, nonce)
            );
        }
        (Err(e), Err(reason)) => assert_eq!(e.reason(), reason),
        (got, want) => panic!("got {got:?}, the rules say {want:?}"),
    }
    if expected(site, ts, nonce, now).is_err() {
        return;
    }
    let wrong: Vec<(&str, String)> = headers(&origin, WRONG, path, body, ts, nonce).into();
    let wrong = header_map(wrong.iter().map(|(k, v)| (*k, v.as_bytes())));
    assert_eq!(
        verdict(&wrong, path, body, now).unwrap_err(),
        Rejection::BadSignature
    );
    let other_path = format!("{path}/");
    assert_eq!(
        verdict(&h, &other_path, body, now).unwrap_err(),
        Rejection::BadSignature
    );
    let mut other_body = body.to_vec();
    other_body.push(b' ');
    assert_eq!(
        verdict(&h, path, &other_body, now).unwrap_err(),
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
    if let Ok(v) = verdict(&forged, path, body, now) {
        assert_eq!(
            (v.origin.as_str(), v.timestamp_ms, v.nonce.as_str()),
            (site, ts, nonce),
            "{name}: {:?} passed as another request",
            String::from_utf8_lossy(&bytes)
        );
    }
});
