//! API keys and roles: `Authorization: Bearer <key>`, checked against the configured SHA-256
//! hashes. A missing or wrong key is 401, a key of the wrong role 403; failures are counted by
//! reason and reported to the replicated audit log in aggregate ([`crate::refusals`]).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sessync_proto::Role;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::state::App;
use crate::refusals::Refused;

/// Who is calling: the configured key's name and role.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) name: String,
    pub(crate) role: Role,
}

/// A caller allowed to use session endpoints (role app or admin).
pub(crate) struct AppCaller(pub(crate) Caller);

/// A caller allowed to use everything (role admin).
pub(crate) struct AdminCaller(pub(crate) Caller);

/// Checks the request's key for an endpoint that needs `needed`.
pub(crate) fn authenticate(parts: &Parts, app: &App, needed: Role) -> Result<Caller, ApiError> {
    // Counted, and reported in aggregate: no log line or audit entry per failure.
    let source = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let fail = |reason: &'static str, _key_name: Option<&str>| {
        app.metrics().auth_failure(reason);
        app.refusals().record(Refused::ApiKey, reason, source, None);
    };
    let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        fail("missing_key", None);
        return Err(ApiError::unauthorized(
            "missing Authorization header: send `Authorization: Bearer <api key>`",
        ));
    };
    let key = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        fail("malformed_header", None);
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <api key>`",
        ));
    }
    let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let Some((name, role)) = app.key(&hash) else {
        fail("unknown_key", None);
        return Err(ApiError::unauthorized("the API key is not valid"));
    };
    if !role.allows(needed) {
        fail("wrong_role", Some(name));
        return Err(ApiError::forbidden(format!(
            "the API key `{name}` has role {}; this endpoint needs role {}",
            role_name(*role),
            role_name(needed)
        )));
    }
    super::Proven::mark(&parts.extensions);
    Ok(Caller {
        name: name.clone(),
        role: *role,
    })
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::App => "app",
        Role::Admin => "admin",
    }
}

impl FromRequestParts<App> for AppCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        authenticate(parts, app, Role::App).map(AppCaller)
    }
}

impl FromRequestParts<App> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        authenticate(parts, app, Role::Admin).map(AdminCaller)
    }
}
