//! `GET /v1/backup`: a consistent backup of the cluster's state, streamed from one node.
//!
//! [`Client::backup`] asks the endpoints in turn until one starts a backup and returns its
//! header ([`BackupHeader`]: cluster, index, term, cluster time, content digest, length,
//! SHA-256) with the rest of the stream; [`Backup::next_chunk`] yields the snapshot bytes,
//! checked against the header as they come: the last chunk is followed by `Ok(None)` only if
//! every byte arrived and the checksum matched.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use sessync_proto::backup::{BackupHeader, Check, MAX_HEADER};

use crate::client::Client;
use crate::error::{describe_reqwest, ClientError};

/// A backup being received.
pub struct Backup {
    /// What it holds.
    pub header: BackupHeader,
    /// The endpoint it comes from.
    pub endpoint: String,
    rest: futures::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    /// Snapshot bytes that came with the header.
    first: Option<Bytes>,
    check: Option<Check>,
}

impl std::fmt::Debug for Backup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backup")
            .field("header", &self.header)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts a backup on the first endpoint that takes it (an admin key). The node takes it at
    /// an index that includes every change acknowledged before this call.
    pub async fn backup(&self) -> Result<Backup, ClientError> {
        let mut last = None;
        for endpoint in self.endpoints() {
            match start(self, endpoint).await {
                Ok(b) => return Ok(b),
                Err(e) if e.is_unavailable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Transport("no endpoint".into())))
    }
}

async fn start(c: &Client, endpoint: &str) -> Result<Backup, ClientError> {
    let url = format!("{endpoint}/v1/backup");
    let mut req = c.http.get(&url);
    if !c.api_key.is_empty() {
        let value = HeaderValue::from_str(&format!("Bearer {}", c.api_key))
            .map_err(|_| ClientError::InvalidArgument("API key is not a header value".into()))?;
        req = req.header(AUTHORIZATION, value);
    }
    // The node writes the whole backup before it answers: the deadline covers that.
    let resp = tokio::time::timeout(c.timeout(), req.send())
        .await
        .map_err(|_| ClientError::Transport(format!("GET {url}: no answer in {:?}", c.timeout())))?
        .map_err(|e| ClientError::Transport(format!("GET {url}: {}", describe_reqwest(&e))))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(ClientError::from_response(status, &body));
    }
    let mut rest = resp.bytes_stream().boxed();
    let mut line = Vec::new();
    let first = loop {
        let Some(chunk) = rest.next().await else {
            return Err(ClientError::Transport(format!(
                "GET {url}: the answer ended before its header line"
            )));
        };
        let chunk = chunk
            .map_err(|e| ClientError::Transport(format!("GET {url}: {}", describe_reqwest(&e))))?;
        if let Some(at) = chunk.iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&chunk[..=at]);
            break chunk.slice(at + 1..);
        }
        line.extend_from_slice(&chunk);
        if line.len() > MAX_HEADER {
            return Err(ClientError::Decode(format!(
                "GET {url}: no backup header line in the first {MAX_HEADER} bytes"
            )));
        }
    };
    let header =
        BackupHeader::parse(&line).map_err(|e| ClientError::Decode(format!("GET {url}: {e}")))?;
    Ok(Backup {
        check: Some(Check::new(&header)),
        header,
        endpoint: endpoint.to_owned(),
        rest,
        first: Some(first),
    })
}

impl Backup {
    /// The next bytes of the snapshot; `Ok(None)` once all arrived and matched the header.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        let chunk = match self.first.take() {
            Some(first) if !first.is_empty() => Some(first),
            _ => match self.rest.next().await {
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => {
                    return Err(ClientError::Transport(format!(
                        "the backup stream from {} broke: {}",
                        self.endpoint,
                        describe_reqwest(&e)
                    )))
                }
                None => None,
            },
        };
        let Some(check) = self.check.as_mut() else {
            return Ok(None);
        };
        match chunk {
            Some(c) => {
                check
                    .update(&c)
                    .map_err(|e| ClientError::Decode(e.to_string()))?;
                Ok(Some(c))
            }
            None => {
                let check = self.check.take().expect("checked above");
                check
                    .finish()
                    .map_err(|e| ClientError::Decode(e.to_string()))?;
                Ok(None)
            }
        }
    }
}
