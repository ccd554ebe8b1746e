//! [`ClientBuilder`]: the endpoints, key, per-call deadline, attempt timeout, retry budget and
//! TLS settings (extra CA, client certificate) of a [`Client`], checked once when it is built.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Client;
use crate::error::{describe_reqwest, ClientError};
use crate::paths::normalize_endpoint;

/// The per-call deadline when none is set: 10 seconds.
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), sessync_client::ClientError> {
/// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
/// assert_eq!(client.timeout(), sessync_client::DEFAULT_TIMEOUT);
/// # Ok(()) }
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Passes over the endpoint list a call makes before it gives up, when none is set. With the
/// jittered backoff (25 ms doubling to 800 ms) five passes over three nodes last a few seconds:
/// long enough to ride out a leader election, and still inside the per-call deadline.
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), sessync_client::ClientError> {
/// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
/// let patient = sessync_client::Client::builder(vec!["http://127.0.0.1:7101".into()], "app-key")
///     .rounds(2 * sessync_client::DEFAULT_ROUNDS)
///     .build()?;
/// # Ok(()) }
/// ```
pub const DEFAULT_ROUNDS: u32 = 5;

/// Builds a [`Client`] with a per-call deadline and retry budget other than the defaults.
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), sessync_client::ClientError> {
/// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
/// let client = sessync_client::Client::builder(vec!["http://127.0.0.1:7101".into()], "app-key")
///     .timeout(std::time::Duration::from_secs(3))
///     .rounds(2)
///     .build()?;
/// # Ok(()) }
/// ```
///
/// Its `Debug` shows no secret: the API key and the client certificate's key print as
/// `<redacted>`.
#[derive(Clone)]
pub struct ClientBuilder {
    endpoints: Vec<String>,
    api_key: String,
    timeout: Duration,
    attempt_timeout: Option<Duration>,
    rounds: u32,
    /// PEM CA certificates trusted besides the public web roots.
    ca_pem: Option<Vec<u8>>,
    /// PEM certificate chain and private key shown to nodes that ask for one.
    identity_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints)
            .field("api_key", &crate::client::Redacted)
            .field("timeout", &self.timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("rounds", &self.rounds)
            .field("ca_certificates", &self.ca_pem.is_some())
            .field(
                "client_certificate",
                &self.identity_pem.as_ref().map(|_| crate::client::Redacted),
            )
            .finish()
    }
}

impl ClientBuilder {
    /// A builder with the defaults; see [`Client::builder`].
    pub(crate) fn new(endpoints: Vec<String>, api_key: String) -> Self {
        Self {
            endpoints,
            api_key,
            timeout: DEFAULT_TIMEOUT,
            attempt_timeout: None,
            rounds: DEFAULT_ROUNDS,
            ca_pem: None,
            identity_pem: None,
        }
    }

    /// Trusts the CA certificates in `pem` (PEM, one or more) for `https://` endpoints, besides
    /// the public web roots: a cluster with its own CA.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let ca = std::fs::read("tls/ca.crt")?;
    /// let client = sessync_client::Client::builder(vec!["https://127.0.0.1:7101".into()], "app-key")
    ///     .ca_certificates(ca)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn ca_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Shows the certificate chain `cert_pem` with its private key `key_pem` (both PEM) to nodes
    /// that require client certificates (`[tls] client_ca_file`).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = sessync_client::Client::builder(vec!["https://127.0.0.1:7101".into()], "app-key")
    ///     .ca_certificates(std::fs::read("tls/ca.crt")?)
    ///     .client_certificate(std::fs::read("tls/app.crt")?, std::fs::read("tls/app.key")?)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl AsRef<[u8]>,
    ) -> Self {
        let mut pem = cert_pem.into();
        pem.push(b'\n');
        pem.extend_from_slice(key_pem.as_ref());
        self.identity_pem = Some(pem);
        self
    }

    /// The per-call deadline: no call, retries and backoff included, lasts longer.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let client = sessync_client::Client::builder(vec!["http://127.0.0.1:7101".into()], "app-key")
    ///     .timeout(std::time::Duration::from_secs(5))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest one attempt may wait for its answer before the call moves to the next
    /// endpoint (default: no limit but the per-call deadline). A node that accepts connections
    /// but does not answer (hung, paused) then costs one attempt instead of the whole call; the
    /// request is sent elsewhere only when repeating it is harmless.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let client = sessync_client::Client::builder(vec!["http://127.0.0.1:7101".into()], "app-key")
    ///     .attempt_timeout(std::time::Duration::from_millis(500))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// How many passes over the endpoint list a call may make (at least 1).
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
    pub fn rounds(mut self, rounds: u32) -> Self {
        self.rounds = rounds.max(1);
        self
    }

    /// Checks the endpoints and builds the client.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let client = sessync_client::Client::builder(vec!["http://127.0.0.1:7101".into()], "app-key").build()?;
    /// assert_eq!(client.endpoints().len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> Result<Client, ClientError> {
        if self.endpoints.is_empty() {
            return Err(ClientError::InvalidArgument(
                "at least one endpoint is needed".into(),
            ));
        }
        let endpoints = self
            .endpoints
            .iter()
            .map(|e| normalize_endpoint(e))
            .collect::<Result<Vec<_>, _>>()?;
        let mut http = reqwest::Client::builder().use_rustls_tls();
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ClientError::InvalidArgument(format!("the CA certificates do not read: {e}"))
            })?;
            if certs.is_empty() {
                return Err(ClientError::InvalidArgument(
                    "the CA file holds no CERTIFICATE block".into(),
                ));
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &self.identity_pem {
            let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
                ClientError::InvalidArgument(format!(
                    "the client certificate and key do not read: {e}"
                ))
            })?;
            http = http.identity(identity);
        }
        let http = http
            .build()
            .map_err(|e| ClientError::Transport(describe_reqwest(&e)))?;
        Ok(Client {
            endpoints: endpoints.into(),
            current: Arc::new(AtomicUsize::new(0)),
            pinned: None,
            api_key: self.api_key.into(),
            http,
            timeout: self.timeout,
            attempt_timeout: self.attempt_timeout,
            rounds: self.rounds,
            leader: Arc::new(AtomicUsize::new(usize::MAX)),
            reads: Arc::new(AtomicUsize::new(0)),
        })
    }
}
