//! The sending side of Raft RPC: openraft's network factory over reqwest (the node's client,
//! with its TLS settings), and the one way any node-to-node request is signed and sent
//! ([`post_signed`]), which checks the signed answer and exchanges clocks with the peer
//! ([`crate::clock`]).

use std::collections::HashMap;
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
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sessync_proto::wire::{
    ANSWER_HEADER, APPEND_PATH, CLOCK_HEADER, CLUSTER_AUTH_HEADER, CLUSTER_ID_HEADER,
    MAX_ANSWER_BYTES, SENDER_HEADER, SNAPSHOT_PATH, VOTE_PATH,
};
use sessync_proto::Timestamp;

use crate::clock::ClockGuard;
use crate::raft_types::{NodeId, TypeConfig};
use crate::signing::{AnswerNote, ClockNote, ClusterProof};
use crate::store::ClusterIdentity;

/// Where a node-to-node request goes: the node's id (bound into the proof, so the request
/// cannot be replayed to another node) and its base URL.
pub(crate) struct Target<'a> {
    pub(crate) id: NodeId,
    pub(crate) base: &'a str,
}

/// What every node-to-node request is sent with: this node's id and incarnation, its HTTP
/// client ([`crate::tls::Tls`]), the cluster secret, the clock guard that learns from every
/// answer, and the peers' incarnations as their answers named them; cheap to clone.
#[derive(Clone)]
pub(crate) struct Link {
    /// This node's id, named in [`SENDER_HEADER`] (informational; the proof authenticates).
    pub(crate) from: NodeId,
    /// This node's incarnation: random, drawn at each start (see [`ClusterProof`]).
    pub(crate) incarnation: u64,
    pub(crate) http: reqwest::Client,
    pub(crate) secret: Arc<Vec<u8>>,
    pub(crate) clock: Arc<ClockGuard>,
    /// Each peer's incarnation, from its last signed answer.
    pub(crate) peers: Arc<parking_lot::Mutex<HashMap<NodeId, u64>>>,
    /// The cluster this node belongs to, named in [`CLUSTER_ID_HEADER`].
    pub(crate) identity: ClusterIdentity,
}

impl Link {
    /// A link for node `from` in a fresh incarnation.
    pub(crate) fn new(
        from: NodeId,
        http: reqwest::Client,
        secret: Vec<u8>,
        clock: ClockGuard,
        identity: ClusterIdentity,
    ) -> Self {
        Link {
            from,
            // Never 0, which stands for "not known".
            incarnation: rand::random::<u64>().max(1),
            http,
            secret: Arc::new(secret),
            clock: Arc::new(clock),
            peers: Arc::default(),
            identity,
        }
    }
}

/// A node-to-node answer whose signature verified: its status and body are the peer's.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

/// Why a node-to-node call brought back no answer to act on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No connection could be made.
    #[error("cannot connect: {0}")]
    Connect(reqwest::Error),
    /// The request or its answer failed on the way (timeout, reset, a body too long).
    #[error("{0}")]
    Transport(String),
    /// An answer came that is not signed for this request with the cluster secret: whoever
    /// sent it, nothing in it is believed.
    #[error("answer without a valid signature (status {0})")]
    Unsigned(StatusCode),
}

/// POSTs `body` to `path` on `to` with the proof of the cluster secret: the one way every
/// node-to-node request (Raft RPC, read index, audit delivery) is sent. It returns only an
/// answer signed for this request ([`AnswerNote`]): one without a valid signature is a
/// [`CallError::Unsigned`], never a vote grant, a read index or an acknowledgement. The
/// client follows no redirects (`crate::tls`). A proof refused for another incarnation of the
/// target (it restarted, or this node has not heard from it yet) is sent again at once, with
/// the incarnation the signed refusal names.
///
/// The request tells the peer how far its clock is from the voters' median, when this node
/// knows; the four timestamps of the exchange (sent, the peer's received and answered, back)
/// are recorded as a sample (refusals included). It also names the sender ([`SENDER_HEADER`])
/// for logs and test proxies.
pub(crate) async fn post_signed(
    link: &Link,
    to: Target<'_>,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Answer, CallError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tried = None;
    loop {
        let known = link.peers.lock().get(&to.id).copied().unwrap_or(0);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (answer, incarnation) = post_once(link, &to, path, body.clone(), known, left).await?;
        link.peers.lock().insert(to.id, incarnation);
        let retry =
            answer.status == StatusCode::UNAUTHORIZED && incarnation != known && tried.is_none();
        if !retry {
            return Ok(answer);
        }
        tried = Some(known);
    }
}

/// One signed request to incarnation `incarnation` of `to`: the verified answer and the
/// incarnation it names.
async fn post_once(
    link: &Link,
    to: &Target<'_>,
    path: &str,
    body: Vec<u8>,
    incarnation: u64,
    timeout: Duration,
) -> Result<(Answer, u64), CallError> {
    let sent_ms = Timestamp::now().millis();
    let proof = ClusterProof::new(to.id, incarnation, sent_ms, &body);
    let mut req = link
        .http
        .post(format!("{}{path}", to.base))
        .header(CLUSTER_AUTH_HEADER, proof.header(&link.secret, path))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SENDER_HEADER, link.from.to_string())
        .timeout(timeout)
        .body(body);
    // A leader of a cluster from before ids makes one for its followers to take.
    let cluster = if path == APPEND_PATH {
        link.identity.get_or_create().ok()
    } else {
        link.identity.get()
    };
    if let Some(id) = cluster {
        req = req.header(CLUSTER_ID_HEADER, id.as_str());
    }
    if let Some(deviation) = link.clock.report_for(to.id) {
        req = req.header(
            CLOCK_HEADER,
            ClockNote::Report(deviation).header(&link.secret, &proof.nonce),
        );
    }
    let started = std::time::Instant::now();
    let mut resp = req.send().await.map_err(|e| {
        if e.is_connect() {
            CallError::Connect(e)
        } else {
            CallError::Transport(e.to_string())
        }
    })?;
    let status = resp.status();
    let header = resp
        .headers()
        .get(ANSWER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_bounded(&mut resp).await?;
    let received_ms = Timestamp::now().millis();
    let round_trip = started.elapsed();
    let note = header
        .and_then(|h| AnswerNote::check(&h, &link.secret, &proof.nonce, status.as_u16(), &body))
        .ok_or(CallError::Unsigned(status))?;
    link.clock.exchanged(
        to.id,
        crate::clock::Exchange {
            sent_ms,
            peer_received_ms: note.received_ms,
            peer_sent_ms: note.sent_ms,
            received_ms,
            round_trip,
        },
    );
    Ok((Answer { status, body }, note.incarnation))
}

/// The answer's body, at most [`MAX_ANSWER_BYTES`] of it (more is a transport error).
async fn read_bounded(resp: &mut reqwest::Response) -> Result<Vec<u8>, CallError> {
    let too_long = || CallError::Transport(format!("answer over {MAX_ANSWER_BYTES} bytes"));
    if resp
        .content_length()
        .is_some_and(|l| l > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_long());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?
    {
        if buf.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_long());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
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
        let Answer {
            status,
            body: bytes,
        } = post_signed(&self.link, to, path, body, ttl)
            .await
            .map_err(|e| match e {
                CallError::Connect(e) => RPCError::Unreachable(Unreachable::new(&e)),
                other => RPCError::Network(NetworkError::new(&other)),
            })?;
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

/// The first pause before an unreachable peer is tried again; it doubles up to
/// [`RETRY_UNREACHABLE_MAX`].
const RETRY_UNREACHABLE_FIRST: Duration = Duration::from_millis(20);
/// The longest pause between two tries of an unreachable peer (openraft's constant default).
const RETRY_UNREACHABLE_MAX: Duration = Duration::from_millis(500);

/// The pauses between tries of a peer that refused connections: short at first, so a node
/// restarted in a rolling upgrade hears from the leader within tens of milliseconds (with
/// openraft's constant 500 ms it waited that long, and a quorum that needed it waited too),
/// then growing to the usual 500 ms for a peer that stays down.
fn unreachable_pauses() -> impl Iterator<Item = Duration> + Send + 'static {
    std::iter::successors(Some(RETRY_UNREACHABLE_FIRST), |d| {
        Some((*d * 2).min(RETRY_UNREACHABLE_MAX))
    })
}

impl RaftNetwork<TypeConfig> for Connection {
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(unreachable_pauses())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_peer_is_tried_again_soon_then_every_half_second() {
        let pauses: Vec<u64> = unreachable_pauses()
            .take(8)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(pauses, [20, 40, 80, 160, 320, 500, 500, 500]);
    }
}
