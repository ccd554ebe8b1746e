//! `[tls]` and `allow_plaintext`: the node's certificate and key, the CAs it requires client
//! certificates from, the CAs it trusts when it calls other nodes and sites, and the rule that
//! a node reachable from other hosts does not serve plain HTTP unless told to.
//!
//! The PEM files are read here, so a missing or unreadable file stops the node at start with a
//! message naming the key; whether they parse as certificates and a key is checked by the node
//! when it builds its TLS settings.

use std::net::SocketAddr;
use std::path::Path;

use crate::model::TlsConfig;
use crate::reader::{Read, Table};
use crate::secret::Secret;

/// Reads `[tls]`: `None` in the outer option when it has problems, `Some(None)` when absent.
pub(crate) fn tls(mut t: Table<'_>) -> Option<Option<TlsConfig>> {
    if t.is_empty() {
        t.finish();
        return Some(None);
    }
    let cert = pem_file(&mut t, "cert_file", true);
    let key = pem_file(&mut t, "key_file", true);
    let client_ca = pem_file(&mut t, "client_ca_file", false);
    let ca = pem_file(&mut t, "ca_file", false);
    t.finish();
    let client_ca_pem = client_ca?;
    Some(Some(TlsConfig {
        cert_pem: cert??,
        key_pem: Secret::from_bytes(key??),
        ca_pem: ca?.or_else(|| client_ca_pem.clone()),
        client_ca_pem,
    }))
}

/// The content of the PEM file named by key `name`: `None` on a problem, `Some(None)` when an
/// optional key is absent.
fn pem_file(t: &mut Table<'_>, name: &'static str, required: bool) -> Option<Option<Vec<u8>>> {
    match t.file(name) {
        Read::Got(path) => match read_pem(&path) {
            Ok(bytes) => Some(Some(bytes)),
            Err(message) => {
                t.invalid(name, message);
                None
            }
        },
        Read::Missing if required => {
            t.invalid(name, "is required when [tls] is set");
            None
        }
        Read::Missing => Some(None),
        Read::Bad => None,
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = crate::files::read_bounded(path, crate::files::MAX_PEM_BYTES)
        .map_err(|reason| format!("cannot read {}: {reason}", path.display()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(format!("{} is not a PEM file", path.display()));
    }
    Ok(bytes)
}

/// Checks the rules that tie `[tls]` to the addresses: a non-loopback `listen` needs TLS or
/// `allow_plaintext = true`; with TLS, every URL this node advertises or calls is `https://`.
pub(crate) fn check_links(
    t: &Table<'_>,
    listen: SocketAddr,
    tls: bool,
    allow_plaintext: bool,
    urls: &[(String, &str)],
) {
    if !tls && !allow_plaintext && !listen.ip().is_loopback() {
        t.invalid(
            "listen",
            format!(
                "{listen} is reachable from other hosts and [tls] is not set; set [tls] \
                 cert_file and key_file, or allow_plaintext = true to serve plain HTTP behind \
                 a TLS proxy"
            ),
        );
    }
    if tls {
        for (key, url) in urls {
            if !url.starts_with("https://") {
                t.ctx()
                    .invalid(key, format!("{url:?} must be https:// when [tls] is set"));
            }
        }
    }
}
