//! An async client for the sessync v1 HTTP API (`shared/spec/api-v1.md`).
//!
//! One [`Client`] talks to a list of node endpoints. Every node serves every endpoint (followers
//! forward writes to the leader), so the client only needs one that answers: on a refused
//! connection or a 503 it fails over to the next endpoint, a bounded number of times with a
//! small jittered backoff, always within the per-call deadline (10 s unless set). The endpoint
//! that answered stays the current one. [`Client::pinned`] talks to one node only, for tests.
//!
//! Each endpoint is one method, typed with the `sessync_proto::api` bodies; every failure is a
//! [`ClientError`] that tells the API's error codes apart from transport trouble.
//!
//! ```no_run
//! use sessync_client::{Client, ClientError};
//! use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
//! use sessync_proto::{Device, UserId};
//!
//! # async fn demo() -> Result<(), ClientError> {
//! let client = Client::new(
//!     vec!["http://127.0.0.1:7101".into(), "http://127.0.0.1:7102".into()],
//!     "my-app-key",
//! )?;
//! let created = client
//!     .create_session(&CreateSessionRequest {
//!         user_id: UserId::parse_field("alice", "user_id").unwrap(),
//!         device: Device::default(),
//!         origin: None,
//!         idempotency_key: None,
//!     })
//!     .await?;
//! let answer = client
//!     .validate(&ValidateRequest {
//!         token: created.token,
//!         touch: true,
//!         consistency: Consistency::Linearizable,
//!     })
//!     .await?;
//! assert!(answer.valid);
//! match client.get_session(&created.session.session_id).await {
//!     Ok(view) => println!("{} is {:?}", view.session_id, view.state),
//!     Err(ClientError::NotFound { .. }) => println!("gone"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Modules: [`transport`] (endpoints, failover, retries, raw requests), [`builder`] (deadline
//! and retry settings), [`error`], [`events`] (the event stream, resumed across failures), and the endpoint groups `sessions` (role app), `admin` (role
//! admin and the open probes) and `cluster` (Raft management), which add methods to [`Client`].

// A test reads best as one scenario, however long.
#![cfg_attr(test, allow(clippy::too_many_lines))]
#![warn(missing_docs)]

mod admin;
mod backup;
pub mod builder;
mod client;
mod cluster;
pub mod error;
pub mod events;
mod pages;
mod paths;
mod retry;
mod sessions;
pub mod transport;

pub use admin::AuditQuery;
pub use backup::Backup;
pub use builder::{ClientBuilder, DEFAULT_ROUNDS, DEFAULT_TIMEOUT};
pub use client::Client;
pub use cluster::StateDigest;
pub use error::ClientError;
pub use reqwest::Method;
/// The header in which every node names the leader's URL.
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), sessync_client::ClientError> {
/// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
/// let (status, _) = client.request_raw(sessync_client::Method::GET, "/readyz", None, &[]).await?;
/// println!("{status}; answers name the leader in {}", sessync_client::LEADER_HEADER);
/// # Ok(()) }
/// ```
pub use sessync_proto::wire::LEADER_HEADER;
