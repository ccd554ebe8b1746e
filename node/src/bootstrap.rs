//! A cluster that forms itself (`[bootstrap]`): while this node is not part of a cluster, it
//! asks the expected members who they are (`POST /raft/hello`, signed like every node-to-node
//! call, the answer too) and decides ([`decide`]):
//!
//! - a node with a membership (initialised, or restarted with its data) does nothing;
//! - a node not among the listed members, or one that finds a member already part of a cluster,
//!   never initialises: it waits until an operator adds it (`POST /cluster/learners`);
//! - once all `expect` members answer and none is part of a cluster, the member with the lowest
//!   node id initialises the cluster with all of them, through [`Runtime::initialize`] (the path
//!   of `POST /cluster/init`); the others wait for it to reach them.
//!
//! Only one node ever initialises, so two nodes started at once never make two clusters. With
//! `dns`, the name is resolved on every round and each address asked; the members are the nodes
//! that answer (exactly `expect` of them, this node among them through its own address), and
//! with TLS each one's certificate is checked against the name. Rounds back off from [`FIRST_WAIT`] to
//! [`MAX_WAIT`], each probe bounded by [`PROBE_TIMEOUT`]; a line is logged when what the node
//! sees changes, not every round.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sessync_config::{BootstrapConfig, BootstrapMembers, TlsConfig};
use sessync_proto::wire::{Hello, HELLO_PATH};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::ClockGuard;
use crate::network::client::{post_signed, Answer, Link, Target};
use crate::raft_types::NodeId;
use crate::runtime::{BootstrapProgress, BootstrapState, Runtime, RuntimeError};

/// The first pause between rounds (also before the first, so a restarted node's membership,
/// read from its log, is in place).
const FIRST_WAIT: Duration = Duration::from_millis(200);
/// The longest pause between rounds.
const MAX_WAIT: Duration = Duration::from_secs(2);
/// How long one member may take to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What this node does after a round.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decision {
    /// Not all members answered yet (or, with `dns`, more than `expect` did), or they did
    /// and another one (the lowest id) is to initialise.
    Wait {
        answered: BTreeSet<NodeId>,
        why: String,
    },
    /// Never initialise: wait to be added.
    Join {
        answered: BTreeSet<NodeId>,
        why: String,
    },
    /// Initialise the cluster with these voters.
    Initialize(BTreeMap<NodeId, String>),
}

/// Decides from the answers of one round (with a member list `me`'s own is among them; with
/// `dns` only if its own address answered) what `me` does.
fn decide(me: NodeId, config: &BootstrapConfig, answers: &[Hello]) -> Decision {
    let answered: BTreeSet<NodeId> = answers.iter().map(|h| h.node_id).collect();
    if let BootstrapMembers::Listed(members) = &config.members {
        if !members.contains_key(&me) {
            return Decision::Join {
                answered,
                why: "this node is not one of bootstrap.members".to_owned(),
            };
        }
    }
    if let Some(h) = answers.iter().find(|h| h.initialized) {
        return Decision::Join {
            answered,
            why: format!("node {} is part of a cluster already", h.node_id),
        };
    }
    if !answered.contains(&me) {
        let why = "this node does not answer at bootstrap.dns yet (its address is not among the \
                   name's)"
            .to_owned();
        return Decision::Wait { answered, why };
    }
    if answered.len() < config.expect {
        let why = format!("{} of {} members answer", answered.len(), config.expect);
        return Decision::Wait { answered, why };
    }
    if answered.len() > config.expect {
        let why = format!(
            "{} nodes answer at bootstrap.dns, more than bootstrap.expect ({}): no cluster is \
             formed until exactly that many do",
            answered.len(),
            config.expect
        );
        return Decision::Wait { answered, why };
    }
    let lowest = answered.first().copied();
    if lowest != Some(me) {
        let why = format!(
            "all {} members answer; node {} initialises",
            config.expect,
            lowest.unwrap_or_default()
        );
        return Decision::Wait { answered, why };
    }
    Decision::Initialize(match &config.members {
        BootstrapMembers::Listed(members) => members.clone(),
        BootstrapMembers::Dns { .. } => answers
            .iter()
            .map(|h| (h.node_id, h.advertise_url.clone()))
            .collect(),
    })
}

/// The bootstrap duty of one node.
pub(crate) struct Bootstrap {
    rt: Runtime,
    config: BootstrapConfig,
    tls: Option<TlsConfig>,
    /// The node's link with a clock guard of its own: answers from nodes that are not yet
    /// voters say nothing about the cluster's clock.
    link: Link,
    /// With `dns`: a client per address, connecting there for the name.
    clients: HashMap<SocketAddr, reqwest::Client>,
}

impl Bootstrap {
    pub(crate) fn new(
        rt: Runtime,
        config: BootstrapConfig,
        tls: Option<TlsConfig>,
        link: &Link,
    ) -> Self {
        let link = Link {
            clock: Arc::new(ClockGuard::new(link.from)),
            peers: Arc::default(),
            ..link.clone()
        };
        Bootstrap {
            rt,
            config,
            tls,
            link,
            clients: HashMap::new(),
        }
    }

    /// Runs rounds until this node is part of a cluster, is to wait to be added, or `stop`.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let mut wait = FIRST_WAIT;
        let mut seen: Option<Decision> = None;
        while stop
            .run_until_cancelled(tokio::time::sleep(wait))
            .await
            .is_some()
        {
            wait = (wait * 2).min(MAX_WAIT);
            if self.rt.is_initialized() {
                return;
            }
            let Some(answers) = stop.run_until_cancelled(self.round()).await else {
                return;
            };
            let decision = decide(self.rt.node_id(), &self.config, &answers);
            if seen.as_ref() != Some(&decision) {
                self.report(&decision);
                seen = Some(decision.clone());
            }
            match decision {
                Decision::Wait { .. } => {}
                Decision::Join { .. } => return,
                Decision::Initialize(members) => {
                    if self.initialize(members).await {
                        return;
                    }
                }
            }
        }
    }

    /// Logs the decision (once per change) and shows it in `GET /cluster/status`.
    fn report(&self, decision: &Decision) {
        let expected = self.config.expect;
        let (answered, state) = match decision {
            Decision::Wait { answered, why } => {
                tracing::info!(?answered, "bootstrap: waiting: {why}");
                (answered.len(), BootstrapState::Waiting)
            }
            Decision::Join { answered, why } => {
                tracing::info!(
                    "bootstrap: this node does not initialise ({why}); it waits for the \
                     cluster's leader to reach it, or to be added (POST /cluster/learners)"
                );
                (answered.len(), BootstrapState::Joining)
            }
            Decision::Initialize(members) => {
                tracing::info!(?members, "bootstrap: every member answers; initialising");
                (members.len(), BootstrapState::Initializing)
            }
        };
        self.rt.set_bootstrap_progress(BootstrapProgress {
            expected,
            answered,
            state,
        });
    }

    /// Initialises the cluster; whether there is nothing left to do.
    async fn initialize(&self, members: BTreeMap<NodeId, String>) -> bool {
        match self.rt.initialize(members.clone()).await {
            Ok(()) => {
                tracing::info!(?members, "bootstrap: initialised the cluster");
                true
            }
            Err(RuntimeError::AlreadyInitialized) => {
                tracing::info!("bootstrap: this node is part of a cluster already");
                true
            }
            Err(RuntimeError::ShuttingDown) => true,
            Err(e) => {
                tracing::warn!(error = %e, "bootstrap: could not initialise the cluster; retrying");
                false
            }
        }
    }

    /// This node's own hello and the answers of the members that gave one this round.
    async fn round(&mut self) -> Vec<Hello> {
        let mut asks = JoinSet::new();
        match &self.config.members {
            BootstrapMembers::Listed(members) => {
                for (&id, url) in members {
                    if id != self.rt.node_id() {
                        asks.spawn(ask(self.link.clone(), id, url.clone()));
                    }
                }
            }
            BootstrapMembers::Dns { host, port } => {
                let (host, port) = (host.clone(), *port);
                for addr in self.resolve(&host, port).await {
                    let Some(link) = self.link_to(&host, addr) else {
                        continue;
                    };
                    let scheme = if self.tls.is_some() { "https" } else { "http" };
                    asks.spawn(ask(link, 0, format!("{scheme}://{host}:{port}")));
                }
            }
        }
        // With a member list this node is one; with dns it is one when its address answers.
        let mut answers = match &self.config.members {
            BootstrapMembers::Listed(_) => vec![self.rt.hello()],
            BootstrapMembers::Dns { .. } => Vec::new(),
        };
        while let Some(joined) = asks.join_next().await {
            if let Ok(Some(hello)) = joined {
                if !answers.iter().any(|h| h.node_id == hello.node_id) {
                    answers.push(hello);
                }
            }
        }
        answers
    }

    /// The name's addresses now (none when it does not resolve: a round with no answers).
    async fn resolve(&self, host: &str, port: u16) -> Vec<SocketAddr> {
        let lookup = tokio::net::lookup_host((host, port));
        match tokio::time::timeout(PROBE_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => {
                let mut addrs: Vec<SocketAddr> = addrs.collect();
                addrs.sort();
                addrs.dedup();
                addrs
            }
            Ok(Err(e)) => {
                tracing::debug!(%host, error = %e, "bootstrap: the name does not resolve");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    /// The link for calls to `host` at `addr`.
    fn link_to(&mut self, host: &str, addr: SocketAddr) -> Option<Link> {
        if !self.clients.contains_key(&addr) {
            match crate::tls::client_resolving(self.tls.as_ref(), host, addr) {
                Ok(c) => {
                    self.clients.insert(addr, c);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bootstrap: no client for {addr}");
                    return None;
                }
            }
        }
        let http = self.clients.get(&addr)?.clone();
        Some(Link {
            http,
            ..self.link.clone()
        })
    }
}

/// Asks the node at `base` (expected to be node `id`; 0 when not known) who it is: its signed
/// answer, if it gave one that says it is that node.
async fn ask(link: Link, id: NodeId, base: String) -> Option<Hello> {
    let to = Target { id, base: &base };
    let Answer { status, body } = post_signed(&link, to, HELLO_PATH, Vec::new(), PROBE_TIMEOUT)
        .await
        .map_err(|e| tracing::debug!(%base, error = %e, "bootstrap: no answer"))
        .ok()?;
    if !status.is_success() {
        tracing::debug!(%base, %status, "bootstrap: refused");
        return None;
    }
    let hello: Hello = serde_json::from_slice(&body).ok()?;
    if id != 0 && hello.node_id != id {
        tracing::warn!(
            %base,
            answered_as = hello.node_id,
            "bootstrap: bootstrap.members.{id} answers as another node; it is not counted"
        );
        return None;
    }
    Some(hello)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(n: u64) -> BootstrapConfig {
        BootstrapConfig {
            expect: n as usize,
            members: BootstrapMembers::Listed(
                (1..=n).map(|i| (i, format!("http://n{i}"))).collect(),
            ),
        }
    }

    fn dns(expect: usize) -> BootstrapConfig {
        BootstrapConfig {
            expect,
            members: BootstrapMembers::Dns {
                host: "peers".into(),
                port: 7101,
            },
        }
    }

    fn hello(id: u64, initialized: bool) -> Hello {
        Hello {
            node_id: id,
            advertise_url: format!("http://n{id}"),
            initialized,
        }
    }

    fn is_init(d: &Decision) -> bool {
        matches!(d, Decision::Initialize(_))
    }

    #[test]
    fn only_the_lowest_member_initialises_once_all_answer() {
        let c = listed(3);
        let all = [hello(1, false), hello(2, false), hello(3, false)];
        assert_eq!(
            decide(1, &c, &all),
            Decision::Initialize((1..=3).map(|i| (i, format!("http://n{i}"))).collect())
        );
        assert!(matches!(decide(2, &c, &all), Decision::Wait { .. }));
        assert!(matches!(decide(3, &c, &all), Decision::Wait { .. }));
        // Not all answer: nobody initialises.
        for me in 1..=3 {
            let some: Vec<Hello> = all
                .iter()
                .filter(|h| h.node_id != 3 || me == 3)
                .take(2)
                .cloned()
                .collect();
            assert!(!is_init(&decide(me, &c, &some)), "{me}");
        }
    }

    #[test]
    fn a_member_in_a_cluster_or_a_stranger_never_initialises() {
        let c = listed(3);
        let one_in = [hello(1, false), hello(2, true), hello(3, false)];
        assert!(matches!(decide(1, &c, &one_in), Decision::Join { .. }));
        let all = [
            hello(4, false),
            hello(1, false),
            hello(2, false),
            hello(3, false),
        ];
        assert!(matches!(decide(4, &c, &all), Decision::Join { .. }));
    }

    #[test]
    fn with_dns_exactly_expect_nodes_must_answer() {
        let c = dns(3);
        let three = [hello(2, false), hello(1, false), hello(3, false)];
        assert!(is_init(&decide(1, &c, &three)));
        assert!(!is_init(&decide(2, &c, &three)));
        let four = [
            hello(1, false),
            hello(2, false),
            hello(3, false),
            hello(4, false),
        ];
        assert!(matches!(decide(1, &c, &four), Decision::Wait { .. }));
        assert!(!is_init(&decide(1, &c, &three[..2])));
        // Its own address does not answer: it is not (yet) a member.
        let others = [hello(2, false), hello(3, false), hello(4, false)];
        assert!(matches!(decide(1, &c, &others), Decision::Wait { .. }));
    }
}
