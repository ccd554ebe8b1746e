//! [`Sites`]: two real clusters, `site-a` and `site-b`, configured as each other's federation
//! peers, for the fan-out tests; and [`PeerSigning`], the signing recipe of
//! docs/federation.md written again here, independently of the node's code, so the tests also
//! check that the documented recipe is the one the nodes accept.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::cluster::TestCluster;
use crate::config::ClusterOptions;
use crate::net::{SiteMode, SiteProxy};
use crate::process;

/// The name [`Sites`] gives the first site.
pub const SITE_A: &str = "site-a";
/// The name [`Sites`] gives the second site.
pub const SITE_B: &str = "site-b";

/// What to start: each site's cluster (its `site` is overridden), and optionally a slow link.
#[derive(Clone, Debug, Default)]
pub struct SitesOptions {
    /// Site A's cluster.
    pub a: ClusterOptions,
    /// Site B's cluster.
    pub b: ClusterOptions,
    /// When set, A reaches B's nodes only through [`SiteProxy`]s that hold every chunk this
    /// long before passing it on: a slow peer. `Some(Duration::ZERO)` puts the proxies in
    /// without a delay, for a test that switches their mode itself ([`Sites::b_proxies`]).
    pub slow_link: Option<Duration>,
    /// When set, B reaches A's nodes only through proxies too ([`Sites::a_proxies`]), so both
    /// directions of the link can be faulted.
    pub proxy_both_ways: bool,
}

/// Two federated sites of real node processes.
pub struct Sites {
    /// Site A (`site-a`).
    pub a: TestCluster,
    /// Site B (`site-b`).
    pub b: TestCluster,
    /// The secret A signs with for B (B's receive secret for A).
    pub a_to_b: String,
    /// The secret B signs with for A.
    pub b_to_a: String,
    proxies: Vec<SiteProxy>,
    a_proxies: Vec<SiteProxy>,
    _dir: TempDir,
}

pub(crate) fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

pub(crate) fn peer_toml(
    name: &str,
    urls: &[String],
    send: &std::path::Path,
    recv: &std::path::Path,
) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "[[federation.peers]]\nname = {name:?}\nurls = [{}]\nsend_secret_file = {:?}\nreceive_secret_file = {:?}\n",
        urls.join(", "),
        send.display().to_string(),
        recv.display().to_string(),
    )
}

impl Sites {
    /// Picks every node's port, writes the two shared secrets, starts both sites (each
    /// initialised) and returns once both have a leader.
    pub async fn start(mut o: SitesOptions) -> anyhow::Result<Sites> {
        let dir = tempfile::Builder::new()
            .prefix("sessync-sites-")
            .tempdir()
            .context("cannot create the sites' directory")?;
        let ports = process::free_ports(o.a.nodes + o.b.nodes, &BTreeSet::new())?;
        let (pa, pb) = ports.split_at(o.a.nodes);
        let scheme = |o: &ClusterOptions| if o.tls.is_some() { "https" } else { "http" };
        let (sa, sb) = (scheme(&o.a), scheme(&o.b));
        let a_urls: Vec<String> = pa.iter().map(|p| format!("{sa}://127.0.0.1:{p}")).collect();
        let b_urls: Vec<String> = pb.iter().map(|p| format!("{sb}://127.0.0.1:{p}")).collect();
        let mut proxies = Vec::new();
        let b_seen_by_a = match o.slow_link {
            None => b_urls.clone(),
            Some(delay) => proxied(pb, delay, &mut proxies).await?,
        };
        let mut a_proxies = Vec::new();
        let a_seen_by_b = match o.slow_link {
            Some(delay) if o.proxy_both_ways => proxied(pa, delay, &mut a_proxies).await?,
            _ => a_urls.clone(),
        };
        let (a_to_b, b_to_a) = (random_secret(), random_secret());
        let (fa, fb) = (dir.path().join("a-to-b"), dir.path().join("b-to-a"));
        fs::write(&fa, format!("{a_to_b}\n"))?;
        fs::write(&fb, format!("{b_to_a}\n"))?;
        o.a.site = SITE_A.into();
        o.a.ports = pa.to_vec();
        o.a.peers_toml = peer_toml(SITE_B, &b_seen_by_a, &fa, &fb);
        o.b.site = SITE_B.into();
        o.b.ports = pb.to_vec();
        o.b.peers_toml = peer_toml(SITE_A, &a_seen_by_b, &fb, &fa);
        let a = TestCluster::start(o.a).await.context("starting site A")?;
        let b = TestCluster::start(o.b).await.context("starting site B")?;
        Ok(Sites {
            a,
            b,
            a_to_b,
            b_to_a,
            proxies,
            a_proxies,
            _dir: dir,
        })
    }
}

/// Proxies in front of `ports`, each holding chunks `delay`; their URLs.
async fn proxied(
    ports: &[u16],
    delay: Duration,
    into: &mut Vec<SiteProxy>,
) -> anyhow::Result<Vec<String>> {
    let mut urls = Vec::new();
    for p in ports {
        let proxy = SiteProxy::start(*p).await?;
        proxy.set_mode(SiteMode::Slow(delay));
        urls.push(proxy.url());
        into.push(proxy);
    }
    Ok(urls)
}

impl Sites {
    /// The proxies A reaches B's nodes through (one per node of B, in id order) when
    /// [`SitesOptions::slow_link`] is set, else none: switch their [`SiteMode`] for federation
    /// faults, or replay the federation requests they captured.
    pub fn b_proxies(&self) -> &[SiteProxy] {
        &self.proxies
    }

    /// The proxies B reaches A's nodes through, with [`SitesOptions::proxy_both_ways`].
    pub fn a_proxies(&self) -> &[SiteProxy] {
        &self.a_proxies
    }

    /// Sets every proxy of both directions to `mode`.
    pub fn set_link(&self, mode: SiteMode) {
        for p in self.proxies.iter().chain(&self.a_proxies) {
            p.set_mode(mode);
        }
    }
}

/// What a request between sites signs, as docs/federation.md gives the recipe.
pub struct PeerSigning<'a> {
    /// The endpoint's path.
    pub path: &'a str,
    /// The sending site.
    pub origin: &'a str,
    /// The site the request is for.
    pub target: &'a str,
    /// When it is signed, Unix milliseconds.
    pub timestamp_ms: u64,
    /// A fresh nonce.
    pub nonce: &'a str,
    /// The exact body.
    pub body: &'a [u8],
}

impl PeerSigning<'_> {
    /// Lowercase hex SHA-256 of the body.
    pub fn body_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.body))
    }

    /// The signature: lowercase hex HMAC-SHA256, keyed by the secret, of
    /// `sessync-peer-v2\nPOST\n{path}\n{origin}\n{target}\n{timestamp_ms}\n{nonce}\n{body length}\n{hex sha256(body)}`.
    pub fn sign(&self, secret: &str) -> String {
        let text = format!(
            "sessync-peer-v2\nPOST\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.path,
            self.origin,
            self.target,
            self.timestamp_ms,
            self.nonce,
            self.body.len(),
            self.body_sha256()
        );
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.trim_end().as_bytes()).expect("any key length");
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The signed headers (`Content-Length` is the body's own), as (name, value) pairs.
    pub fn headers(&self, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("x-sessync-site", self.origin.to_owned()),
            ("x-sessync-target-site", self.target.to_owned()),
            ("x-sessync-timestamp", self.timestamp_ms.to_string()),
            ("x-sessync-nonce", self.nonce.to_owned()),
            ("x-sessync-content-sha256", self.body_sha256()),
            ("x-sessync-signature", self.sign(secret)),
        ]
    }
}

/// This machine's clock in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
