//! The `Client` handle: its endpoints, key and limits, how to make one and derive variants of
//! it (another deadline, another key, pinned to one node). How its requests travel is in
//! [`crate::transport`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::builder::ClientBuilder;
use crate::error::ClientError;

/// An async client for the sessync v1 API over one or more node endpoints.
///
/// Cheap to clone; clones share the connection pool and the current endpoint.
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), sessync_client::ClientError> {
/// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
/// let client = sessync_client::Client::new(
///     vec!["http://127.0.0.1:7101".into(), "http://127.0.0.1:7102".into(), "http://127.0.0.1:7103".into()],
///     "app-key",
/// )?;
/// let healthy = client.readyz().await?;
/// println!("ready: {healthy}");
/// # Ok(()) }
/// ```
///
/// Its `Debug` shows no secret: the API key prints as `<redacted>`, the connection pool (which
/// holds the client certificate's key) not at all.
#[derive(Clone)]
pub struct Client {
    pub(crate) endpoints: Arc<[String]>,
    pub(crate) current: Arc<AtomicUsize>,
    pub(crate) pinned: Option<usize>,
    pub(crate) api_key: Arc<str>,
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Duration,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) rounds: u32,
    /// The index of the leader as the nodes last named it (`x-sessync-leader`), or `usize::MAX`.
    pub(crate) leader: Arc<AtomicUsize>,
    /// Round-robin counter that spreads reads over the endpoints.
    pub(crate) reads: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints)
            .field("pinned", &self.pinned)
            .field("api_key", &Redacted)
            .field("timeout", &self.timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

/// A secret's place in `Debug` output.
pub(crate) struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Client {
    /// A client over `endpoints` (base URLs such as `http://127.0.0.1:7101`) that sends
    /// `api_key` as a bearer token, with the default deadline and retry budget.
    ///
    /// An empty `api_key` sends no `Authorization` header.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let client = sessync_client::Client::new(
    ///     vec!["http://127.0.0.1:7101".into(), "http://127.0.0.1:7102".into()],
    ///     "app-key",
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn new(endpoints: Vec<String>, api_key: impl Into<String>) -> Result<Client, ClientError> {
        Client::builder(endpoints, api_key).build()
    }

    /// A builder for a client with a non-default deadline or retry budget.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let client = sessync_client::Client::builder(vec!["http://127.0.0.1:7101".into()], "app-key")
    ///     .rounds(3)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn builder(endpoints: Vec<String>, api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(endpoints, api_key.into())
    }

    /// This client with another per-call deadline.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let quick = client.clone().with_timeout(std::time::Duration::from_secs(2));
    /// let _ = quick.readyz().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// This client with a limit on each attempt (see [`ClientBuilder::attempt_timeout`]).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let c = client.clone().with_attempt_timeout(std::time::Duration::from_millis(500));
    /// let _ = c.healthz().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Client {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// This client with another API key (empty: no `Authorization` header).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let admin = client.with_api_key("admin-key");
    /// let _ = admin.cluster_status().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_api_key(&self, api_key: impl Into<String>) -> Client {
        let mut c = self.clone();
        c.api_key = api_key.into().into();
        c
    }

    /// A client that talks only to `endpoints[index]`, one attempt per call, no failover.
    ///
    /// # Panics
    /// If `index` is not an index of the endpoint list.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let first = client.pinned(0);
    /// let _ = first.readyz().await?;
    /// # Ok(()) }
    /// ```
    pub fn pinned(&self, index: usize) -> Client {
        assert!(
            index < self.endpoints.len(),
            "pinned({index}) but the client has {} endpoints",
            self.endpoints.len()
        );
        let mut c = self.clone();
        c.pinned = Some(index);
        c
    }

    /// The endpoints, normalized (no trailing slash).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// assert_eq!(client.endpoints(), ["http://127.0.0.1:7101"]);
    /// # Ok(()) }
    /// ```
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The endpoint the next call starts at (the pinned one, for a pinned client).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// println!("talking to {}", client.current_endpoint());
    /// # Ok(()) }
    /// ```
    pub fn current_endpoint(&self) -> &str {
        &self.endpoints[self.current_index()]
    }

    /// The per-call deadline.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// assert_eq!(client.timeout(), sessync_client::DEFAULT_TIMEOUT);
    /// # Ok(()) }
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn current_index(&self) -> usize {
        self.pinned
            .unwrap_or_else(|| self.current.load(Ordering::Relaxed) % self.endpoints.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Client` and `ClientBuilder` derived `Debug` and printed the API key and the client
    /// certificate's private key into any log line that formatted them.
    #[test]
    fn debug_output_of_client_and_builder_holds_no_secret() {
        let api_key = "app-key-that-must-never-be-printed-7f3a";
        let cert = rcgen::generate_simple_self_signed(vec!["app.test".to_owned()]).unwrap();
        let key_pem = cert.key_pair.serialize_pem();
        let key_body = key_pem.lines().nth(1).unwrap().to_owned();
        let builder = Client::builder(vec!["https://127.0.0.1:7101".into()], api_key)
            .client_certificate(cert.cert.pem(), key_pem.as_bytes());
        let client = builder.clone().build().unwrap();
        let printed = [
            format!("{builder:?}"),
            format!("{builder:#?}"),
            format!("{client:?}"),
            format!("{client:#?}"),
            format!("{:?}", client.with_api_key("another-secret-key-0c1d")),
        ];
        for text in &printed {
            assert!(!text.contains(api_key), "{text}");
            assert!(!text.contains("another-secret-key-0c1d"), "{text}");
            assert!(!text.contains(&key_body), "{text}");
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
            assert!(text.contains("https://127.0.0.1:7101"), "{text}");
        }
    }
}
