//! How a request reaches a node: the endpoint list, failover, bounded retries with jittered
//! backoff, the per-call deadline, and the raw escape hatch for tests.
//!
//! Nodes forward writes to their leader themselves, so the client only has to find a node that
//! answers. Reads (GET, validate) take turns over the endpoints, since any node answers them
//! linearizably; writes start at the leader once a node has named it (every answer carries
//! `x-sessync-leader`), else at the current endpoint, whose node forwards them. On a refused
//! connection or a 503 a call moves to the next endpoint, for at most `rounds` passes over the
//! list, and always within the per-call deadline. The endpoint that answered becomes the current
//! one, shared by every clone of the client. A request that may have reached a node (the
//! connection broke after it was sent) is retried only when repeating it is harmless:
//! idempotent methods, validate, touch,
//! and every create (each carries an idempotency key, the caller's or a random one); so the
//! client never creates a session twice.

use std::sync::atomic::Ordering;

use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{describe_reqwest, ClientError};
use crate::retry::{endpoint_for_attempt, jittered_backoff};
use sessync_proto::wire::LEADER_HEADER;

/// Whether a request only reads (answered by any node, linearizably), so it can go anywhere.
fn is_read(method: &Method, path: &str) -> bool {
    *method == Method::GET || (*method == Method::POST && path == "/v1/sessions/validate")
}

/// One answer: status and body, not decoded, and the leader the node named.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub leader: Option<String>,
}

/// What one attempt came to.
enum Attempt {
    Answer(Answer),
    /// The request never reached the node; trying elsewhere is always safe.
    NotSent(String),
    /// The request may have reached the node.
    Uncertain(String),
    /// The deadline passed.
    TimedOut(String),
}

impl Client {
    /// Sends one request to the current endpoint only (no failover, no retry) and returns the
    /// status and body as they came, without decoding: for tests of malformed requests.
    ///
    /// `path` starts with `/` and may carry a query. The API key goes as usual and a body is sent
    /// as `Content-Type: application/json`; each of `headers` is set last and replaces any
    /// header of the same name (so `("authorization", "Bearer x")` overrides the key).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let (status, _body) = client
    ///     .request_raw(sessync_client::Method::POST, "/v1/sessions", Some(b"{not json".to_vec()), &[])
    ///     .await?;
    /// assert_eq!(status, 400);
    /// # Ok(()) }
    /// ```
    pub async fn request_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let deadline = Instant::now() + self.timeout;
        let idx = self.current_index();
        match self
            .attempt(idx, &method, path, body.as_deref(), headers, deadline)
            .await?
        {
            Attempt::Answer(a) => Ok((a.status, a.body)),
            Attempt::NotSent(m) | Attempt::Uncertain(m) | Attempt::TimedOut(m) => {
                Err(ClientError::Transport(m))
            }
        }
    }

    /// Sends `body` (if any) as JSON and decodes a 2xx answer as `T`; maps any other status.
    /// A request that may have reached a node is repeated only if the method is idempotent.
    pub(crate) async fn call<B, T>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let repeatable = method.is_idempotent();
        self.call_with(method, path, body, repeatable).await
    }

    /// Like [`Client::call`]; `repeatable` says whether sending the request twice is harmless.
    pub(crate) async fn call_with<B, T>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        repeatable: bool,
    ) -> Result<T, ClientError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let bytes = match body {
            Some(b) => Some(
                serde_json::to_vec(b)
                    .map_err(|e| ClientError::InvalidArgument(format!("cannot encode: {e}")))?,
            ),
            None => None,
        };
        let answer = self.send(method, path, bytes, repeatable).await?;
        if !(200..300).contains(&answer.status) {
            return Err(ClientError::from_response(answer.status, &answer.body));
        }
        serde_json::from_slice(&answer.body).map_err(|e| {
            let text = String::from_utf8_lossy(&answer.body);
            let start: String = text.chars().take(200).collect();
            ClientError::Decode(format!("{path}: {e}; body starts with: {start}"))
        })
    }

    /// Sends a request with failover and retries; returns the answer of the node that gave
    /// one (a 503 only when every attempt ended in one or in a refused connection). After a
    /// broken connection the request is sent again only if `repeatable`.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        repeatable: bool,
    ) -> Result<Answer, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let len = self.endpoints.len();
        let (start, attempts) = match self.pinned {
            Some(i) => (i, 1),
            None => (
                self.first_endpoint(&method, path),
                len * self.rounds as usize,
            ),
        };
        let mut last: Option<Result<Answer, ClientError>> = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                let pause = jittered_backoff(attempt - 1);
                if Instant::now() + pause >= deadline {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
            let idx = endpoint_for_attempt(start, attempt, len);
            let outcome = self
                .attempt(idx, &method, path, body.as_deref(), &[], deadline)
                .await?;
            if !matches!(&outcome, Attempt::Answer(a) if a.status != 503) {
                // A leader that does not answer is no longer worth going to first.
                let _ = self.leader.compare_exchange(
                    idx,
                    usize::MAX,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            match outcome {
                Attempt::Answer(a) if a.status == 503 => last = Some(Ok(a)),
                Attempt::Answer(a) => {
                    if self.pinned.is_none() {
                        self.current.store(idx, Ordering::Relaxed);
                    }
                    self.learn_leader(a.leader.as_deref());
                    return Ok(a);
                }
                Attempt::NotSent(m) => last = Some(Err(ClientError::Transport(m))),
                Attempt::Uncertain(m) if repeatable => last = Some(Err(ClientError::Transport(m))),
                Attempt::Uncertain(m) | Attempt::TimedOut(m) => {
                    return Err(ClientError::Transport(m))
                }
            }
            if self.pinned.is_none() {
                self.current
                    .store(endpoint_for_attempt(idx, 1, len), Ordering::Relaxed);
            }
        }
        match last {
            Some(r) => r,
            None => Err(ClientError::Transport(format!(
                "{method} {path}: no attempt fitted in the {:?} deadline",
                self.timeout
            ))),
        }
    }

    /// Where a call starts: reads take turns over the endpoints (any node answers them
    /// linearizably); writes go to the leader if a node has named one of the endpoints as it,
    /// else to the current endpoint (a follower forwards them).
    fn first_endpoint(&self, method: &Method, path: &str) -> usize {
        let len = self.endpoints.len();
        if is_read(method, path) {
            return self.reads.fetch_add(1, Ordering::Relaxed) % len;
        }
        match self.leader.load(Ordering::Relaxed) {
            i if i < len => i,
            _ => self.current_index(),
        }
    }

    /// Remembers the leader a node named, if it is one of the endpoints.
    fn learn_leader(&self, url: Option<&str>) {
        let Some(url) = url.map(|u| u.trim_end_matches('/')) else {
            return;
        };
        if let Some(i) = self.endpoints.iter().position(|e| e == url) {
            self.leader.store(i, Ordering::Relaxed);
        }
    }

    /// One request to `endpoints[idx]`, bounded by `deadline`.
    async fn attempt(
        &self,
        idx: usize,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Attempt, ClientError> {
        let endpoint = &self.endpoints[idx];
        let url = format!("{endpoint}{path}");
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(Attempt::TimedOut(format!(
                "{method} {url}: the {:?} deadline passed",
                self.timeout
            )));
        }
        let limit = self.attempt_timeout.map_or(remaining, |a| a.min(remaining));
        let cut_short = limit < remaining;
        let mut req = self.http.request(method.clone(), &url).timeout(limit);
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        let mut request = req
            .build()
            .map_err(|e| ClientError::InvalidArgument(describe_reqwest(&e)))?;
        let h = request.headers_mut();
        if !self.api_key.is_empty() {
            let value =
                HeaderValue::from_str(&format!("Bearer {}", self.api_key)).map_err(|_| {
                    ClientError::InvalidArgument("API key is not a header value".into())
                })?;
            h.insert(AUTHORIZATION, value);
        }
        if body.is_some() {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::InvalidArgument(format!("header `{name}`: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| ClientError::InvalidArgument(format!("header value: {e}")))?;
            h.insert(name, value);
        }
        let exchange = async {
            let resp = self.http.execute(request).await?;
            let status = resp.status().as_u16();
            let leader = resp
                .headers()
                .get(LEADER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                body: body.to_vec(),
                leader,
            })
        };
        let outcome = match tokio::time::timeout(limit, exchange).await {
            Ok(Ok(answer)) => Attempt::Answer(answer),
            Ok(Err(e)) => {
                let msg = format!("{method} {url}: {}", describe_reqwest(&e));
                if e.is_timeout() && cut_short {
                    Attempt::Uncertain(format!("{msg} (attempt timeout {limit:?})"))
                } else if e.is_timeout() {
                    Attempt::TimedOut(msg)
                } else if e.is_connect() {
                    Attempt::NotSent(msg)
                } else {
                    Attempt::Uncertain(msg)
                }
            }
            Err(_) if cut_short => Attempt::Uncertain(format!(
                "{method} {url}: no answer within the {limit:?} attempt timeout"
            )),
            Err(_) => Attempt::TimedOut(format!(
                "{method} {url}: no answer within the {:?} deadline",
                self.timeout
            )),
        };
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_and_normalized() {
        let c = Client::new(
            vec!["http://127.0.0.1:7101/".into(), " http://h:2 ".into()],
            "k",
        )
        .unwrap();
        assert_eq!(c.endpoints(), ["http://127.0.0.1:7101", "http://h:2"]);
        assert!(matches!(
            Client::new(vec![], "k"),
            Err(ClientError::InvalidArgument(_))
        ));
        assert!(matches!(
            Client::new(vec!["127.0.0.1:7101".into()], "k"),
            Err(ClientError::InvalidArgument(_))
        ));
        assert!(matches!(
            Client::new(vec!["ftp://h".into()], "k"),
            Err(ClientError::InvalidArgument(_))
        ));
    }

    #[test]
    fn pinned_and_sticky_index() {
        let c = Client::new(
            vec![
                "http://a:1".into(),
                "http://b:2".into(),
                "http://c:3".into(),
            ],
            "k",
        )
        .unwrap();
        assert_eq!(c.current_endpoint(), "http://a:1");
        let p = c.pinned(2);
        assert_eq!(p.current_endpoint(), "http://c:3");
        // Clones share the current endpoint; the pinned one ignores it.
        c.current.store(1, Ordering::Relaxed);
        assert_eq!(c.clone().current_endpoint(), "http://b:2");
        assert_eq!(p.current_endpoint(), "http://c:3");
    }

    #[test]
    #[should_panic(expected = "pinned(3)")]
    fn pinned_out_of_range_panics() {
        let c = Client::new(vec!["http://a:1".into()], "k").unwrap();
        let _ = c.pinned(3);
    }
}
