//! The sending side of Raft RPC: openraft's network factory over reqwest (the node's client,
//! with its TLS settings), and the one way any node-to-node request is signed and sent
//! ([`post_signed`]), which also exchanges clocks with the peer ([`crate::clock`]).

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sessync_proto::wire::{
    APPEND_PATH, CLOCK_HEADER, CLUSTER_AUTH_HEADER, SENDER_HEADER, SNAPSHOT_PATH, VOTE_PATH,
};
use sessync_proto::Timestamp;

use crate::clock::ClockGuard;
use crate::raft_types::{NodeId, TypeConfig};
use crate::signing::{ClockNote, ClusterProof};

/// Where a node-to-node request goes: the node's id (bound into the proof, so the request
/// cannot be replayed to another node) and its base URL.
pub(crate) struct Target<'a> {
    pub(crate) id: NodeId,
    pub(crate) base: &'a str,
}

/// What every node-to-node request is sent with: this node's id, its HTTP client
/// ([`crate::tls::Tls`]), the cluster secret, and the clock guard that learns from every
/// answer; cheap to clone.
#[derive(Clone)]
pub(crate) struct Link {
    /// This node's id, named in [`SENDER_HEADER`] (informational; the proof authenticates).
    pub(crate) from: NodeId,
    pub(crate) http: reqwest::Client,
    pub(crate) secret: Arc<Vec<u8>>,
    pub(crate) clock: Arc<ClockGuard>,
}

/// POSTs `body` to `path` on `to` with the proof of the cluster secret: the one way every
/// node-to-node request (Raft RPC, read index, audit delivery) is sent. The request tells the
/// peer how far its clock is from the voters' median, when this node knows; the peer's signed
/// clock in the answer (refusals included) is recorded as a sample. It also names the sender
/// ([`SENDER_HEADER`]) for logs and test proxies.
pub(crate) async fn post_signed(
    link: &Link,
    to: Target<'_>,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<reqwest::Response, reqwest::Error> {
    let sent_ms = Timestamp::now().millis();
    let proof = ClusterProof::new(to.id, sent_ms, &body);
    let mut req = link
        .http
        .post(format!("{}{path}", to.base))
        .header(CLUSTER_AUTH_HEADER, proof.header(&link.secret, path))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SENDER_HEADER, link.from.to_string())
        .timeout(timeout)
        .body(body);
    if let Some(deviation) = link.clock.report_for(to.id) {
        req = req.header(
            CLOCK_HEADER,
            ClockNote::Report(deviation).header(&link.secret, &proof.nonce),
        );
    }
    let started = std::time::Instant::now();
    let resp = req.send().await?;
    let note = resp
        .headers()
        .get(CLOCK_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ClockNote::check(v, &link.secret, &proof.nonce));
    if let Some(ClockNote::Now(peer_ms)) = note {
        let received_ms = Timestamp::now().millis();
        link.clock
            .exchanged(to.id, sent_ms, peer_ms, received_ms, started.elapsed());
    }
    Ok(resp)
}

/// Makes connections to peers; shares the node's [`Link`].
#[derive(Clone)]
pub(crate) struct Network {
    link: Link,
}

impl Network {
    pub(crate) fn new(link: Link) -> Self {
        Self { link }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection {
            link: self.link.clone(),
            base: node.addr.trim_end_matches('/').to_owned(),
            target,
        }
    }
}

/// A connection to one peer.
pub(crate) struct Connection {
    link: Link,
    base: String,
    target: NodeId,
}

impl Connection {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let to = Target {
            id: self.target,
            base: &self.base,
        };
        let resp = post_signed(&self.link, to, path, body, ttl)
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if !status.is_success() {
            let msg = format!(
                "peer {} answered {} to {}: {}",
                self.target,
                status,
                path,
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            );
            return Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other(msg),
            )));
        }
        let res: Result<Resp, E> =
            serde_json::from_slice(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(APPEND_PATH, &req, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(SNAPSHOT_PATH, &req, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(VOTE_PATH, &req, option.hard_ttl()).await
    }
}
