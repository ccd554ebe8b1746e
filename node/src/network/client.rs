//! The sending side of Raft RPC: openraft's network factory over reqwest (the node's client,
//! with its TLS settings), and the one way any node-to-node request is signed and sent
//! ([`post_signed`]).

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
use sessync_proto::wire::{APPEND_PATH, CLUSTER_AUTH_HEADER, SNAPSHOT_PATH, VOTE_PATH};
use sessync_proto::Timestamp;

use crate::raft_types::{NodeId, TypeConfig};
use crate::signing::ClusterProof;

/// Where a node-to-node request goes: the node's id (bound into the proof, so the request
/// cannot be replayed to another node) and its base URL.
pub(crate) struct Target<'a> {
    pub(crate) id: NodeId,
    pub(crate) base: &'a str,
}

/// POSTs `body` to `path` on `to` with the proof of the cluster secret: the one way every
/// node-to-node request (Raft RPC, read index, audit delivery) is sent.
pub(crate) async fn post_signed(
    http: &reqwest::Client,
    secret: &[u8],
    to: Target<'_>,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<reqwest::Response, reqwest::Error> {
    let proof = ClusterProof::new(to.id, Timestamp::now().millis(), &body).header(secret, path);
    http.post(format!("{}{path}", to.base))
        .header(CLUSTER_AUTH_HEADER, proof)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(timeout)
        .body(body)
        .send()
        .await
}

/// Makes connections to peers; shares one HTTP client and the cluster secret.
#[derive(Clone)]
pub(crate) struct Network {
    http: reqwest::Client,
    secret: Arc<Vec<u8>>,
}

impl Network {
    /// `http` is the node's client ([`crate::tls::Tls`]).
    pub(crate) fn new(secret: Vec<u8>, http: reqwest::Client) -> Self {
        Self {
            http,
            secret: Arc::new(secret),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection {
            http: self.http.clone(),
            secret: self.secret.clone(),
            base: node.addr.trim_end_matches('/').to_owned(),
            target,
        }
    }
}

/// A connection to one peer.
pub(crate) struct Connection {
    http: reqwest::Client,
    secret: Arc<Vec<u8>>,
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
        let resp = post_signed(&self.http, &self.secret, to, path, body, ttl)
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
