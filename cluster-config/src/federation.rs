//! `[federation]` and its `[[federation.peers]]`: the other sites, their node URLs, and the
//! secrets requests to and from each are signed with.

use std::path::Path;

use sessync_proto::SiteName;

use crate::model::{FederationConfig, PeerConfig};
use crate::reader::{Read, Table};
use crate::secret::{read_secret_file, Secret};
use crate::validate;

/// How many receive secrets a peer may have at once: the current one and, while the peer
/// rotates, the next.
pub const MAX_RECEIVE_SECRETS: usize = 2;

/// Reads `[federation]`. `own_site` (when valid) must not be listed as a peer.
pub(crate) fn federation(
    mut t: Table<'_>,
    own_site: Option<&SiteName>,
) -> Option<FederationConfig> {
    let d = FederationConfig::default();
    let timestamp_window = t.duration("timestamp_window").or(d.timestamp_window);
    let outbox_limit = t.whole("outbox_limit").or(d.outbox_limit);
    let retry_initial = t.duration("retry_initial").or(d.retry_initial);
    let retry_max = t.duration("retry_max").or(d.retry_max);
    let send_timeout = t.duration("send_timeout").or(d.send_timeout);
    let outbox_max_age = t.duration("outbox_max_age").or(d.outbox_max_age);
    let max_received_per_peer = t.whole("max_received_per_peer").or(d.max_received_per_peer);
    for (key, v) in [
        ("timestamp_window", timestamp_window),
        ("retry_initial", retry_initial),
        ("retry_max", retry_max),
        ("send_timeout", send_timeout),
        ("outbox_max_age", outbox_max_age),
    ] {
        if v.is_some_and(|v| v.is_zero()) {
            t.invalid(key, "must be more than 0");
        }
    }
    if outbox_limit == Some(0) {
        t.invalid("outbox_limit", "must be more than 0");
    }
    if max_received_per_peer == Some(0) {
        t.invalid("max_received_per_peer", "must be more than 0");
    }
    if let (Some(first), Some(max)) = (retry_initial, retry_max) {
        if max < first {
            t.invalid("retry_max", "must be at least retry_initial");
        }
    }
    let tables = t.tables("peers");
    let mut peers = Vec::with_capacity(tables.len());
    let mut all_ok = true;
    let mut names: Vec<(SiteName, String)> = Vec::new();
    for p in tables {
        let here = p.here().to_owned();
        match peer(p, own_site, &names) {
            Some(peer) => {
                names.push((peer.name.clone(), here));
                peers.push(peer);
            }
            None => all_ok = false,
        }
    }
    if all_ok {
        all_ok = distinct_send_secrets(&t, &peers);
    }
    t.finish();
    all_ok.then_some(FederationConfig {
        peers,
        timestamp_window: timestamp_window?,
        outbox_limit: outbox_limit?,
        retry_initial: retry_initial?,
        retry_max: retry_max?,
        send_timeout: send_timeout?,
        outbox_max_age: outbox_max_age?,
        max_received_per_peer: max_received_per_peer?,
    })
}

/// Whether every peer has a send secret of its own. One secret serving two peers would let
/// either of them act as this site towards the other (a request signed for one verifies with
/// the other's copy of the secret), so it is refused, naming both peers.
fn distinct_send_secrets(t: &Table<'_>, peers: &[PeerConfig]) -> bool {
    for (i, a) in peers.iter().enumerate() {
        if let Some((j, _)) = peers
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, b)| b.send_secret.expose() == a.send_secret.expose())
        {
            t.invalid(
                &format!("peers[{j}].send_secret_file"),
                format!(
                    "holds the same secret as peers[{i}] ({:?}); each peer needs a send secret of \
                     its own, or either peer could sign requests as this site to the other",
                    a.name.as_str(),
                ),
            );
            return false;
        }
    }
    true
}

fn peer(
    mut p: Table<'_>,
    own_site: Option<&SiteName>,
    seen: &[(SiteName, String)],
) -> Option<PeerConfig> {
    let name = p.string("name").require(&p, "name");
    let name = p.validate("name", name, |n| validate::site_name(&n));
    let name = p.validate("name", name, |n| {
        if own_site == Some(&n) {
            return Err(format!(
                "{:?} is this node's own site; a site is not its own peer",
                n.as_str()
            ));
        }
        match seen.iter().find(|(s, _)| *s == n) {
            Some((_, first)) => Err(format!("{:?} is also the name of {first}", n.as_str())),
            None => Ok(n),
        }
    });

    let urls = p.strings("urls").require(&p, "urls");
    let urls = p.validate("urls", urls, |urls| {
        if urls.is_empty() {
            Err("must list at least one URL of the peer's nodes".to_owned())
        } else {
            Ok(urls)
        }
    });
    let urls = urls.and_then(|urls| {
        let mut out = Vec::with_capacity(urls.len());
        for (i, url) in urls.iter().enumerate() {
            match validate::base_url(url) {
                Ok(u) => out.push(u),
                Err(message) => p.invalid(&format!("urls[{i}]"), message),
            }
        }
        (out.len() == urls.len()).then_some(out)
    });

    let send_secret = p.file("send_secret_file").require(&p, "send_secret_file");
    let send_secret = send_secret.and_then(|path| secret(&p, "send_secret_file", &path));

    let one = p.file("receive_secret_file");
    let many = p.files("receive_secret_files");
    let receive_secrets = match (one, many) {
        (Read::Missing, Read::Missing) => {
            p.invalid(
                "receive_secret_file",
                "is required (or receive_secret_files, a list of one or two files while the peer rotates its secret)",
            );
            None
        }
        (one, many) if !one.is_missing() && !many.is_missing() => {
            p.invalid(
                "receive_secret_files",
                "give either receive_secret_file or receive_secret_files, not both",
            );
            None
        }
        (Read::Got(path), _) => secret(&p, "receive_secret_file", &path).map(|s| vec![s]),
        (_, Read::Got(paths)) => receive_list(&p, &paths),
        _ => None,
    };
    p.finish();
    Some(PeerConfig {
        name: name?,
        urls: urls?,
        send_secret: send_secret?,
        receive_secrets: receive_secrets?,
    })
}

fn receive_list(p: &Table<'_>, paths: &[std::path::PathBuf]) -> Option<Vec<Secret>> {
    if paths.is_empty() || paths.len() > MAX_RECEIVE_SECRETS {
        p.invalid(
            "receive_secret_files",
            format!(
                "lists {} files; give one, or two while the peer rotates its secret",
                paths.len()
            ),
        );
        return None;
    }
    let secrets: Vec<Secret> = paths
        .iter()
        .enumerate()
        .filter_map(|(i, path)| secret(p, &format!("receive_secret_files[{i}]"), path))
        .collect();
    (secrets.len() == paths.len()).then_some(secrets)
}

/// Reads the secret file of key `name`, reporting a problem under that key.
pub(crate) fn secret(t: &Table<'_>, name: &str, path: &Path) -> Option<Secret> {
    match read_secret_file(path) {
        Ok(s) => Some(s),
        Err(message) => {
            t.invalid(name, message);
            None
        }
    }
}
