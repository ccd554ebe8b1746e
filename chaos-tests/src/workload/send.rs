//! How an operation of the workload reaches a node: through the client library, trying the
//! chosen node first and failing over like an app would, or as a hand-made HTTP request to that
//! node only (errors read as the library reads them).

use sessync_client::{Client, ClientError};

use super::{Workload, ATTEMPT_TIMEOUT, OP_TIMEOUT};
use crate::history::Via;

/// Who sends an operation where.
#[derive(Clone, Copy)]
pub(super) struct Step {
    pub(super) c: u32,
    pub(super) site: usize,
    pub(super) node: usize,
    pub(super) via: Via,
}

impl Workload {
    /// A client of the library that tries `node` first, then the site's others.
    pub(super) fn library(&self, site: usize, node: usize) -> Client {
        let s = &self.sites[site];
        let mut urls: Vec<String> = s.nodes.iter().map(|(_, u)| u.clone()).collect();
        urls.rotate_left(node);
        Client::builder(urls, s.app_key.clone())
            .timeout(OP_TIMEOUT)
            .attempt_timeout(ATTEMPT_TIMEOUT)
            .build()
            .expect("a client of loopback URLs builds")
    }

    /// A hand-made request to the step's node only; errors mapped as the library maps them.
    pub(super) async fn raw_call<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        step: Step,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError> {
        let s = &self.sites[step.site];
        let mut req = self
            .raw
            .request(method, format!("{}{path}", s.nodes[step.node].1))
            .bearer_auth(&s.app_key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(ClientError::from_response(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }
}
