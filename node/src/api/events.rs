//! `GET /v1/events` (any key): Server-Sent Events, one per session state change (created,
//! blocked, activated, ended), so an app can log a user out at once. Touches are not state
//! changes and are not sent. `?user_id=` narrows the stream to one user.
//!
//! Each event's `id:` is the change's replicated position ([`EventPosition`]: log index and
//! cluster time), the same on every node. A subscriber that reconnects with `Last-Event-ID`
//! first gets every session whose state changed after that position, in log order and as it is
//! now, then the live changes; so it misses nothing retention still keeps. If retention may
//! have removed some (the position is older than `retention`), the stream starts with a
//! `trimmed` event. A subscriber too slow for the live feed catches up the same way from its
//! last event instead of losing changes. Every stream ends when the node stops, so a shutdown
//! never waits on a subscriber.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use sessync_proto::events::{SessionEvent, TrimmedEvent, LAST_EVENT_ID_HEADER, SESSION, TRIMMED};
use sessync_proto::{ErrorBody, EventPosition, SessionView, UserId};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AppCaller;
use super::error::ApiError;
use super::state::App;
use crate::session::Session;
use crate::store::{AppliedChange, StateReader};

/// Sessions read from the store per step of a catch-up, so a subscriber far behind costs a
/// bounded amount of memory at a time.
const CATCH_UP_PAGE: usize = 500;

pub(crate) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(events))
}

#[derive(Deserialize)]
struct EventsQuery {
    user_id: Option<String>,
}

#[utoipa::path(get, path = "/v1/events", tag = "sessions",
    params(
        ("user_id" = Option<String>, Query, description = "Only this user's sessions"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id: first every session changed since, then the live changes"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `session` (data: SessionEvent; id: the change's position) and `trimmed` (data: TrimmedEvent), with keep-alives", content_type = "text/event-stream", body = SessionEvent),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody)),
    security(("api_key" = [])))]
async fn events(
    State(app): State<App>,
    _caller: AppCaller,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let user = q
        .user_id
        .as_deref()
        .map(|u| UserId::parse_field(u, "user_id"))
        .transpose()?;
    let from = match headers.get(LAST_EVENT_ID_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("Last-Event-ID", "is not text"))?
                .parse::<EventPosition>()?,
        ),
    };
    let reader = app.rt().state().clone();
    // Subscribed before the catch-up reads the store, so no change falls between the two.
    let rx = reader.subscribe();
    let follow = Follow::new(
        reader,
        rx,
        user,
        from,
        app.metrics().event_catch_ups.clone(),
    );
    let stream = futures::stream::unfold(follow, |mut f| async move {
        f.next().await.map(|item| (Ok(item.into_event()), f))
    });
    let stop = app.stop().clone().cancelled_owned();
    Ok(Sse::new(futures::StreamExt::take_until(stream, stop)).keep_alive(KeepAlive::default()))
}

/// What a subscriber is sent.
#[derive(Debug)]
enum Item {
    /// A session's state after a change, at the change's position.
    Session(EventPosition, Box<SessionView>),
    /// The position asked for may be older than what retention keeps.
    Trimmed(TrimmedEvent),
}

impl Item {
    fn into_event(self) -> Event {
        match self {
            Item::Session(at, session) => {
                let data = SessionEvent {
                    index: at.index,
                    session: *session,
                };
                Event::default()
                    .event(SESSION)
                    .id(at.to_string())
                    .data(json(&data))
            }
            Item::Trimmed(t) => Event::default().event(TRIMMED).data(json(&t)),
        }
    }
}

/// One subscriber's place in the stream of changes.
struct Follow {
    reader: StateReader,
    rx: Receiver<AppliedChange>,
    user: Option<UserId>,
    /// The log index of the last change sent; nothing at or before it is sent again.
    last: u64,
    /// Reading changes after `last` from the store (at a resume, or after falling behind the
    /// live feed) before following the live feed.
    catching_up: bool,
    queue: VecDeque<Item>,
    /// Counts catch-ups (`sessync_event_catch_ups_total`).
    catch_ups: Counter,
}

impl Follow {
    fn new(
        reader: StateReader,
        rx: Receiver<AppliedChange>,
        user: Option<UserId>,
        from: Option<EventPosition>,
        catch_ups: Counter,
    ) -> Follow {
        let mut queue = VecDeque::new();
        if from.is_some() {
            catch_ups.inc();
        }
        if let Some(p) = from {
            // Retention removes sessions ended before `clock - retention`; one that changed
            // after `p` can be among them only if `p` is older than that.
            let kept_since = reader.read(|s| s.clock().minus(s.policy().retention));
            if p.at < kept_since {
                queue.push_back(Item::Trimmed(TrimmedEvent {
                    asked: p.to_string(),
                    kept_since,
                }));
            }
        }
        Follow {
            reader,
            rx,
            user,
            last: from.map_or(0, |p| p.index),
            catching_up: from.is_some(),
            queue,
            catch_ups,
        }
    }

    /// The next event to send; None once the node stops applying.
    async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.catching_up {
                self.catch_up_page();
                continue;
            }
            match self.rx.recv().await {
                Ok(change) => {
                    if change.index <= self.last {
                        continue;
                    }
                    // Only the entry that changed the session's state announces it.
                    let Some(at) = change.session.changed.filter(|p| p.index == change.index)
                    else {
                        continue;
                    };
                    if self
                        .user
                        .as_ref()
                        .is_some_and(|u| *u != change.session.user_id)
                    {
                        continue;
                    }
                    self.last = change.index;
                    return Some(self.item(&change.session, at));
                }
                Err(RecvError::Lagged(_)) => {
                    self.catch_ups.inc();
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Queues the next page of sessions changed after `last`; the catch-up ends with a page
    /// that is not full.
    fn catch_up_page(&mut self) {
        let (page, full) = self.reader.read(|s| {
            let page = s.changed_after(self.last, self.user.as_ref(), CATCH_UP_PAGE);
            let full = page.len() == CATCH_UP_PAGE;
            let page: Vec<(EventPosition, Session)> = page
                .into_iter()
                .filter_map(|x| x.changed.map(|p| (p, x.clone())))
                .collect();
            (page, full)
        });
        for (at, session) in page {
            self.last = self.last.max(at.index);
            let item = self.item(&session, at);
            self.queue.push_back(item);
        }
        self.catching_up = full;
    }

    fn item(&self, session: &Session, at: EventPosition) -> Item {
        Item::Session(at, Box::new(self.reader.read(|s| session.view(s.policy()))))
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftStateMachine;
    use tokio::sync::broadcast;

    use super::*;
    use crate::store::tests::{rt, sample_log};

    #[test]
    fn a_subscriber_that_lags_catches_up_from_the_store_in_log_order() {
        rt().block_on(async {
            let dir = tempfile::TempDir::new().unwrap();
            let (_, mut sm) = crate::store::open(dir.path()).unwrap();
            sm.apply(sample_log()).await.unwrap();
            let reader = sm.reader();
            // Every session as the store has it, in the order of its last change.
            let mut want: Vec<(u64, String)> = reader.read(|s| {
                s.all()
                    .map(|x| (x.changed.unwrap().index, x.id.to_string()))
                    .collect()
            });
            want.sort();
            assert!(want.len() > 3, "the sample has sessions");
            // A live feed of two overflows with three changes: the subscriber lags.
            let (tx, rx) = broadcast::channel(2);
            for s in reader.read(|s| s.all().take(3).cloned().collect::<Vec<_>>()) {
                let index = s.changed.unwrap().index;
                tx.send(AppliedChange { index, session: s }).unwrap();
            }
            let catch_ups = Counter::default();
            let mut f = Follow::new(reader, rx, None, None, catch_ups.clone());
            let mut got = Vec::new();
            for _ in 0..want.len() {
                match f.next().await {
                    Some(Item::Session(at, v)) => got.push((at.index, v.session_id.to_string())),
                    other => panic!("expected a session, got {other:?}"),
                }
            }
            assert_eq!(got, want, "every session once, in log order");
            // The changes still in the feed were sent by the catch-up: nothing more comes.
            drop(tx);
            assert!(f.next().await.is_none());
            assert_eq!(catch_ups.get(), 1);
        });
    }
}
