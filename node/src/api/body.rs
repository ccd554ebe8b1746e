//! Reading request bodies: bounded in size and time, and every JSON parse failure a
//! `bad_request` that names the field at fault.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use sessync_proto::ErrorCode;

use super::error::ApiError;
use super::state::App;

/// Reads at most `limit` bytes of body, all of it within `deadline` (a client sending a byte
/// now and then cannot hold a request open).
pub(crate) async fn read_limited(
    body: Body,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::too_large(limit)),
        Err(_) => Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} ([limits] body_timeout)",
                humantime::format_duration(deadline)
            ),
        )),
    }
}

/// Parses `bytes` as `T`, naming the field in any error. An empty body reads as `{}`.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("body", "must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // A missing field is reported at its parent's path; name the field itself.
        let missing = msg
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        let field = match (missing, path.as_str()) {
            _ if inner.is_syntax() || inner.is_eof() => "body".to_owned(),
            (Some(f), "." | "") => f,
            (Some(f), p) => format!("{p}.{f}"),
            (None, "." | "" | "?") => "body".to_owned(),
            (None, p) => p.to_owned(),
        };
        let reason = if inner.is_syntax() || inner.is_eof() {
            format!("is not valid JSON: {msg}")
        } else {
            msg
        };
        ApiError::bad_request(&field, reason)
    })
}

/// A JSON body of type `T`, read with the node's size limit (`[limits] max_body_bytes`).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<App> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        let bytes = read_limited(req.into_body(), app.max_body_bytes(), app.body_timeout()).await?;
        Ok(JsonBody(parse(&bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessync_proto::api::CreateSessionRequest;

    fn field_of(body: &str) -> String {
        parse::<CreateSessionRequest>(body.as_bytes())
            .unwrap_err()
            .body
            .error
            .field
            .unwrap()
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of("{}"), "user_id");
        assert_eq!(field_of(r#"{"user_id":"a","colour":1}"#), "colour");
        assert_eq!(field_of(r#"{"user_id":5}"#), "user_id");
        assert_eq!(field_of(r#"{"user_id":""}"#), "user_id");
        assert_eq!(
            field_of(r#"{"user_id":"a","device":{"name":3}}"#),
            "device.name"
        );
        assert_eq!(
            field_of(r#"{"user_id":"a","device":{"nme":"x"}}"#),
            "device.nme"
        );
        assert_eq!(field_of("{not json"), "body");
    }

    #[test]
    fn bad_json_is_bad_request() {
        let e = parse::<CreateSessionRequest>(b"[1,2").unwrap_err();
        assert_eq!(e.body.error.code, ErrorCode::BadRequest);
        assert!(e.body.error.message.contains("body"));
    }
}
