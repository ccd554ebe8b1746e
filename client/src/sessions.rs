//! The session endpoints (role `app`): create, validate, touch, get, end, list, verify and
//! invalidate.

use reqwest::Method;
use sessync_proto::api::{
    CreateSessionRequest, CreateSessionResponse, InvalidateRequest, InvalidateResponse,
    SessionResponse, SessionsResponse, TouchResponse, ValidateRequest, ValidateResponse,
    VerifyRequest, VerifyResponse,
};
use sessync_proto::{SessionId, SessionView, UserId};

use crate::client::Client;
use crate::error::ClientError;
use crate::paths::encode_component;

/// The path segment for a user id, percent-encoded.
///
/// `.` and `..` are refused: URL normalization would turn them into a different path.
pub(crate) fn user_segment(user_id: &UserId) -> Result<String, ClientError> {
    match user_id.as_str() {
        "." | ".." => Err(ClientError::InvalidArgument(format!(
            "user id `{user_id}` cannot be sent as a path segment"
        ))),
        raw => Ok(encode_component(raw)),
    }
}

/// A random idempotency key: 128 bits as hex, prefixed so it reads as the client's own.
fn fresh_idempotency_key() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("auto-{hex}")
}

/// The path of one session.
fn session_path(id: &SessionId) -> String {
    format!("/v1/sessions/{}", encode_component(id.as_str()))
}

/// The path and query of a user's session list.
pub(crate) fn list_path(user_id: &UserId, all: bool) -> Result<String, ClientError> {
    let state = if all { "all" } else { "active" };
    Ok(format!(
        "/v1/users/{}/sessions?state={state}",
        user_segment(user_id)?
    ))
}

impl Client {
    /// `POST /v1/sessions`: logs a user in. The token in the answer is shown only once.
    ///
    /// Under `on_limit = "deny"` a login over the limit is [`ClientError::LimitReached`].
    /// Every create carries an idempotency key — the caller's, or a fresh random one — so the
    /// client can resend it after a broken connection or to another node: the cluster answers
    /// with the session it already made (and the same token), never a second one.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// use sessync_proto::api::CreateSessionRequest;
    /// let req = CreateSessionRequest {
    ///     user_id: user.clone(),
    ///     device: Default::default(),
    ///     origin: Some("web".into()),
    ///     idempotency_key: None,
    /// };
    /// let created = client.create_session(&req).await?;
    /// println!("session {} token {}", created.session.session_id, created.token);
    /// # Ok(()) }
    /// ```
    pub async fn create_session(
        &self,
        req: &CreateSessionRequest,
    ) -> Result<CreateSessionResponse, ClientError> {
        if req.idempotency_key.is_some() {
            return self
                .call_with(Method::POST, "/v1/sessions", Some(req), true)
                .await;
        }
        let keyed = CreateSessionRequest {
            idempotency_key: Some(fresh_idempotency_key()),
            ..req.clone()
        };
        self.call_with(Method::POST, "/v1/sessions", Some(&keyed), true)
            .await
    }

    /// `POST /v1/sessions/validate`: whether a token is valid now (`valid: false` with a
    /// `reason` is an answer, not an error).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// use sessync_proto::api::{Consistency, ValidateRequest};
    /// let req = ValidateRequest {
    ///     token: "the-token-from-login".into(),
    ///     touch: true,
    ///     consistency: Consistency::Linearizable,
    /// };
    /// let v = client.validate(&req).await?;
    /// if !v.valid {
    ///     println!("log the user out: {:?}", v.reason);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn validate(&self, req: &ValidateRequest) -> Result<ValidateResponse, ClientError> {
        self.call_with(Method::POST, "/v1/sessions/validate", Some(req), true)
            .await
    }

    /// `POST /v1/sessions/{id}/touch`: marks the session used now.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let t = client.touch(&id).await?;
    /// println!("{} s until the idle end", t.seconds_until_idle_end);
    /// # Ok(()) }
    /// ```
    pub async fn touch(&self, id: &SessionId) -> Result<TouchResponse, ClientError> {
        let path = format!("{}/touch", session_path(id));
        self.call_with::<(), _>(Method::POST, &path, None, true)
            .await
    }

    /// `GET /v1/sessions/{id}`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let s = client.get_session(&id).await?;
    /// println!("{:?} since {}", s.state, s.created_at);
    /// # Ok(()) }
    /// ```
    pub async fn get_session(&self, id: &SessionId) -> Result<SessionView, ClientError> {
        let r: SessionResponse = self
            .call::<(), _>(Method::GET, &session_path(id), None)
            .await?;
        Ok(r.session)
    }

    /// `DELETE /v1/sessions/{id}`: ends the session (`logout` with an app key, `admin` with an
    /// admin key). Idempotent: ending an ended session answers it as it is.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let s = client.end_session(&id).await?;
    /// println!("ended: {:?}", s.end_reason);
    /// # Ok(()) }
    /// ```
    pub async fn end_session(&self, id: &SessionId) -> Result<SessionView, ClientError> {
        let r: SessionResponse = self
            .call::<(), _>(Method::DELETE, &session_path(id), None)
            .await?;
        Ok(r.session)
    }

    /// `GET /v1/users/{user_id}/sessions?state=active|all`: the user's sessions, newest first;
    /// only the active ones unless `all`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// for s in client.list_sessions(&user, false).await? {
    ///     println!("{} on {:?}", s.session_id, s.device.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_sessions(
        &self,
        user_id: &UserId,
        all: bool,
    ) -> Result<Vec<SessionView>, ClientError> {
        let path = list_path(user_id, all)?;
        self.all_pages(&path, None, |r: SessionsResponse| {
            (r.sessions, r.next_cursor)
        })
        .await
    }

    /// `POST /v1/users/{user_id}/verify`: makes one session (default: the newest) the user's
    /// only one; the others end `superseded`. `targets` fan the verify out to peer sites.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// use sessync_proto::api::VerifyRequest;
    /// let v = client.verify(&user, &VerifyRequest::default()).await?;
    /// println!("kept {}, ended {}", v.verified, v.ended);
    /// # Ok(()) }
    /// ```
    pub async fn verify(
        &self,
        user_id: &UserId,
        req: &VerifyRequest,
    ) -> Result<VerifyResponse, ClientError> {
        let path = format!("/v1/users/{}/verify", user_segment(user_id)?);
        self.call(Method::POST, &path, Some(req)).await
    }

    /// `POST /v1/users/{user_id}/invalidate`: ends one session or (default) all of the
    /// user's; `targets` fan it out to peer sites.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// use sessync_proto::api::InvalidateRequest;
    /// let r = client.invalidate(&user, &InvalidateRequest::default()).await?;
    /// println!("ended {} sessions", r.ended);
    /// # Ok(()) }
    /// ```
    pub async fn invalidate(
        &self,
        user_id: &UserId,
        req: &InvalidateRequest,
    ) -> Result<InvalidateResponse, ClientError> {
        let path = format!("/v1/users/{}/invalidate", user_segment(user_id)?);
        self.call(Method::POST, &path, Some(req)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::parse_field(s, "user_id").unwrap()
    }

    #[test]
    fn list_path_encodes_user_and_state() {
        assert_eq!(
            list_path(&user("alice"), false).unwrap(),
            "/v1/users/alice/sessions?state=active"
        );
        assert_eq!(
            list_path(&user("bob smith/x?y"), true).unwrap(),
            "/v1/users/bob%20smith%2Fx%3Fy/sessions?state=all"
        );
        assert!(matches!(
            list_path(&user(".."), true),
            Err(ClientError::InvalidArgument(_))
        ));
        assert_eq!(user_segment(&user("a.b")).unwrap(), "a.b");
    }

    #[test]
    fn session_path_shape() {
        let id = SessionId::from_random([0x0f; 16]);
        assert_eq!(
            session_path(&id),
            "/v1/sessions/s_0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"
        );
    }
}
