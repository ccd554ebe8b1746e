//! Wire types and domain identifiers shared by the sessync node and its clients.
//!
//! Everything that crosses the HTTP API of `shared/spec/api-v1.md` is declared here once, so the
//! node and the client library compile against the same definitions and cannot drift apart.
//!
//! - [`ids`]: validated identifiers (`UserId`, `SessionId`, `SiteName`) and their size limits.
//! - [`time`]: cluster time in milliseconds and its RFC 3339 rendering.
//! - [`session`]: a session as the API shows it, its state and end reasons.
//! - [`policy`]: the replicated session policy (idle timeout, lifetime, limit and what to do at it).
//! - [`api`]: request and answer bodies of every endpoint.
//! - [`federation`]: what sites send each other, its signed headers, and the federation status.
//! - [`error`]: the error body and its codes.
//! - [`events`]: the live event stream's events and the positions a subscriber resumes from.
//! - [`backup`]: the backup file's header and its check.
//! - [`wire`]: header names and the node-to-node RPC paths, declared once.
//!
//! With the `openapi` feature every wire type also has a JSON Schema (utoipa), from which the
//! node builds its OpenAPI document.

// A test reads best as one scenario, however long.
#![cfg_attr(test, allow(clippy::too_many_lines))]

pub mod api;
pub mod backup;
pub mod error;
pub mod events;
pub mod federation;
pub mod ids;
#[cfg(feature = "openapi")]
mod openapi;
pub mod policy;
pub mod session;
pub mod time;
pub mod wire;

pub use error::{ErrorBody, ErrorCode, ErrorDetail, FieldError};
pub use events::EventPosition;
pub use ids::{OpId, SessionId, SiteName, UserId};
pub use policy::{OnLimit, Policy, PolicyUpdate, Role};
pub use session::{Device, EndReason, SessionState, SessionView};
pub use time::Timestamp;
