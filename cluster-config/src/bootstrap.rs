//! `[bootstrap]`: how a cluster forms itself. `expect` members, named by `members` (node id →
//! URL) or by `dns` (`name:port`, whose addresses are the members); and
//! `node_id_from_hostname`, which takes `node_id` from the host name's trailing ordinal
//! (`sessync-2` → 3, as a StatefulSet names its pods). Every value is checked here, naming its
//! key; the rules that tie it to `node_id` and `advertise_url` are checked once those are read.

use std::collections::BTreeMap;

use crate::model::{BootstrapConfig, BootstrapMembers};
use crate::reader::{Read, Table};
use crate::validate;

/// `[bootstrap]` as read: the bootstrap settings (`None` when neither `members` nor `dns` is
/// set) and, with `node_id_from_hostname`, the host name and the node id it gives.
pub(crate) struct Bootstrap {
    pub(crate) config: Option<BootstrapConfig>,
    pub(crate) from_hostname: Option<(String, u64)>,
}

/// Reads `[bootstrap]`; `None` when it has problems (reported).
pub(crate) fn bootstrap(mut t: Table<'_>) -> Option<Bootstrap> {
    let expect = t.whole::<usize>("expect");
    let members = t.string_map("members");
    let dns = t.string("dns");
    let from_hostname = t.flag("node_id_from_hostname").or(false);
    let hostname_key = t.key("node_id_from_hostname");
    let from_hostname = match from_hostname {
        Some(true) => {
            let host = t.ctx().env.hostname();
            match host.as_deref().map(ordinal_id) {
                Some(Ok(id)) => Some(Some((host.unwrap_or_default(), id))),
                Some(Err(message)) => {
                    t.ctx().invalid(&hostname_key, message);
                    None
                }
                None => {
                    t.ctx().invalid(
                        &hostname_key,
                        "the host name is not known ($HOSTNAME is unset and the system's \
                         cannot be read)",
                    );
                    None
                }
            }
        }
        Some(false) => Some(None),
        None => None,
    };
    let members = match (members, dns) {
        (Read::Bad, _) | (_, Read::Bad) => None,
        (Read::Got(_), Read::Got(_)) => {
            t.invalid("dns", "set bootstrap.members or bootstrap.dns, not both");
            None
        }
        (Read::Got(m), Read::Missing) => listed(&t, m).map(Some),
        (Read::Missing, Read::Got(d)) => t.validate("dns", Some(d), |d| dns_name(&d)).map(Some),
        (Read::Missing, Read::Missing) => {
            if !expect.is_missing() {
                t.invalid(
                    "members",
                    "is required with bootstrap.expect: list the members (node id = URL) or \
                     set bootstrap.dns",
                );
                None
            } else {
                Some(None)
            }
        }
    };
    let config = match (members, expect) {
        (Some(Some(members)), Read::Got(expect)) => check_expect(&t, expect, members),
        (Some(Some(_)), Read::Missing) => {
            t.invalid("expect", "is required: how many members form the cluster");
            None
        }
        (Some(None), _) => Some(None),
        _ => None,
    };
    t.finish();
    Some(Bootstrap {
        config: config?,
        from_hostname: from_hostname?,
    })
}

fn check_expect(
    t: &Table<'_>,
    expect: usize,
    members: BootstrapMembers,
) -> Option<Option<BootstrapConfig>> {
    if expect == 0 {
        t.invalid("expect", "must be at least 1");
        return None;
    }
    if let BootstrapMembers::Listed(list) = &members {
        if list.len() != expect {
            t.invalid(
                "expect",
                format!(
                    "is {expect}, but bootstrap.members lists {} members; they must agree",
                    list.len()
                ),
            );
            return None;
        }
    }
    Some(Some(BootstrapConfig { expect, members }))
}

/// `members`: node ids (> 0) to base URLs.
fn listed(t: &Table<'_>, raw: BTreeMap<String, String>) -> Option<BootstrapMembers> {
    if raw.is_empty() {
        t.invalid("members", "must name at least one member");
        return None;
    }
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (key, url) in raw {
        let name = format!("members.{key}");
        let Some(id) = key.trim().parse::<u64>().ok().filter(|id| *id > 0) else {
            t.invalid(&name, "the key must be a node id > 0");
            ok = false;
            continue;
        };
        match validate::base_url(&url) {
            Ok(url) => {
                out.insert(id, url);
            }
            Err(message) => {
                t.invalid(&name, message);
                ok = false;
            }
        }
    }
    ok.then_some(BootstrapMembers::Listed(out))
}

/// `dns`: `host:port`.
fn dns_name(raw: &str) -> Result<BootstrapMembers, String> {
    let raw = raw.trim();
    let bad = || format!("{raw:?} must be a DNS name and port such as sessync-peers:7101");
    let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !host_ok {
        return Err(bad());
    }
    Ok(BootstrapMembers::Dns {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// The node id a host name gives: its first label's trailing ordinal, plus one
/// (`sessync-0` → 1, `sessync-2.sessync-peers.default.svc` → 3).
pub(crate) fn ordinal_id(host: &str) -> Result<u64, String> {
    let label = host.trim().split('.').next().unwrap_or_default();
    let ordinal = label
        .rsplit_once('-')
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n < u64::MAX);
    match ordinal {
        Some(n) => Ok(n + 1),
        None => Err(format!(
            "the host name {host:?} does not end in -<ordinal> (such as sessync-2), so it gives \
             no node id"
        )),
    }
}

/// The node id: from the host name when `node_id_from_hostname` is set (`node_id`, if also
/// set, must agree), else `node_id` (required).
pub(crate) fn node_id(t: &Table<'_>, node_id: Read<u64>, boot: Option<&Bootstrap>) -> Option<u64> {
    let from_host = boot.and_then(|b| b.from_hostname.as_ref());
    let id = match (node_id, from_host) {
        (Read::Got(id), Some((host, h))) if id != *h => {
            t.invalid(
                "node_id",
                format!(
                    "is {id}, but bootstrap.node_id_from_hostname gives {h} (host name \
                     {host:?}); set one of them"
                ),
            );
            None
        }
        (_, Some((_, h))) => Some(*h),
        (Read::Missing, None) if boot.is_none() => None,
        (read, None) => read.require(t, "node_id"),
    };
    t.validate("node_id", id, |id| match id {
        0 => Err("must be > 0".to_owned()),
        id => Ok(id),
    })
}

/// The rules between the members and this node: the URL listed for this node's id is its
/// `advertise_url`, and no other member's URL is (a node not among the members is allowed:
/// it never initialises, and joins when it is added).
pub(crate) fn check_self(t: &Table<'_>, config: &BootstrapConfig, node_id: u64, advertise: &str) {
    let BootstrapMembers::Listed(members) = &config.members else {
        return;
    };
    for (id, url) in members {
        let key = format!("bootstrap.members.{id}");
        if *id == node_id && url != advertise {
            t.ctx().invalid(
                &key,
                format!(
                    "is this node's (node_id {node_id}) URL, but advertise_url is {advertise:?}; \
                     they must be the same"
                ),
            );
        } else if *id != node_id && url == advertise {
            t.ctx().invalid(
                &key,
                format!(
                    "is this node's advertise_url, but node_id is {node_id}: this node is not \
                     member {id}"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_of_host_names() {
        assert_eq!(ordinal_id("sessync-0"), Ok(1));
        assert_eq!(ordinal_id("sessync-2"), Ok(3));
        assert_eq!(ordinal_id("my-app-12.peers.default.svc"), Ok(13));
        for bad in ["sessync", "sessync-", "sessync-x", "2", "sessync-2a", ""] {
            assert!(ordinal_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_names() {
        assert_eq!(
            dns_name("Peers.default.svc:7101"),
            Ok(BootstrapMembers::Dns {
                host: "peers.default.svc".into(),
                port: 7101
            })
        );
        for bad in [
            "peers",
            "peers:0",
            ":7101",
            "pe rs:7101",
            "a..b:1",
            "peers:x",
        ] {
            assert!(dns_name(bad).is_err(), "{bad}");
        }
    }
}
