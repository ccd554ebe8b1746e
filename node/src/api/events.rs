//! `GET /v1/events` (role admin): Server-Sent Events, one per session state change as this node
//! applies it, so an app can log a user out at once. Touches are not state changes and are not
//! sent. `?user_id=` narrows the stream to one user. A subscriber too slow to keep up gets a
//! `lagged` event saying how many changes it missed, and the stream goes on. Every stream ends
//! when the node stops, so a shutdown never waits on a subscriber.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use sessync_proto::UserId;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use super::auth::AdminCaller;
use super::error::ApiError;
use super::state::App;

pub(crate) fn routes() -> Router<App> {
    Router::new().route("/v1/events", get(events))
}

#[derive(Deserialize)]
struct EventsQuery {
    user_id: Option<String>,
}

async fn events(
    State(app): State<App>,
    _caller: AdminCaller,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let user = q
        .user_id
        .as_deref()
        .map(|u| UserId::parse_field(u, "user_id"))
        .transpose()?;
    let reader = app.rt().state().clone();
    let stop = app.stop().clone().cancelled_owned();
    let changes = futures::StreamExt::take_until(BroadcastStream::new(reader.subscribe()), stop);
    let stream = changes.filter_map(move |item| match item {
        Ok(change) => {
            if user.as_ref().is_some_and(|u| *u != change.session.user_id) {
                return None;
            }
            let view = reader.read(|s| change.session.view(s.policy()));
            let data = json!({ "index": change.index, "session": view });
            Some(Ok(Event::default()
                .event("session")
                .id(change.index.to_string())
                .data(data.to_string())))
        }
        Err(BroadcastStreamRecvError::Lagged(n)) => Some(Ok(Event::default()
            .event("lagged")
            .data(json!({ "missed": n }).to_string()))),
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
