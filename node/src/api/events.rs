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
//!
//! A catch-up reads the store's change index ([`crate::session::SessionStore::changed_after`]): one page of at
//! most [`CATCH_UP_PAGE`] sessions per read of the store, found by change position, so it
//! visits only sessions changed after the position and holds the store's lock for one page at a
//! time. The index holds every session the store keeps at its last change, so any position, `0-0`
//! included, resumes from it: what it cannot answer is only what retention removed (the
//! `trimmed` event says so) and sessions last changed before positions were recorded (never
//! sent by a catch-up).
//!
//! Each stream holds a slot of the node's and its API key's budgets of open streams
//! ([`super::stream_slots`]) until it closes.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use sessync_proto::events::{SessionEvent, TrimmedEvent, LAST_EVENT_ID_HEADER, SESSION, TRIMMED};
use sessync_proto::{ErrorBody, EventPosition, SessionId, SessionView, UserId};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AppCaller;
use super::error::ApiError;
use super::state::App;
use crate::session::{ChangeCursor, Session};
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
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody),
        (status = 503, description = "The node (`[limits] max_event_streams`) or this API key on it (`max_event_streams_per_key`) has as many streams open as it may; the message names the bound", body = ErrorBody)),
    security(("api_key" = [])))]
async fn events(
    State(app): State<App>,
    AppCaller(caller): AppCaller,
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
    // Held by the stream's body for as long as it is open (the bound on requests in progress
    // lets go when the head is sent).
    let slot = app.stream_slots().take(&caller.name)?;
    let reader = app.rt().state().clone();
    // Subscribed before the catch-up reads the store, so no change falls between the two.
    let rx = reader.subscribe();
    let follow = Follow::new(
        reader,
        rx,
        user,
        from,
        app.metrics().events.catch_ups.clone(),
    );
    let stream = futures::stream::unfold((follow, slot), |(mut f, slot)| async move {
        f.next()
            .await
            .map(|item| (Ok(item.into_event()), (f, slot)))
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
    /// Where the catch-up reads next: after this change position.
    cursor: ChangeCursor,
    /// Live changes at or before this log index were covered by the resume position or a
    /// catch-up; they are not sent again.
    floor: u64,
    /// The log index of the last live change sent, and the sessions sent at it: one entry may
    /// change many sessions, so a subscriber that lags in the middle of one catches up from
    /// that entry, without sending again what it sent of it.
    live_at: u64,
    live_sent: HashSet<SessionId>,
    /// Reading changes after `cursor` from the store (at a resume, or after falling behind the
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
        if let Some(p) = from {
            catch_ups.inc();
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
        let floor = from.map_or(0, |p| p.index);
        Follow {
            reader,
            rx,
            user,
            cursor: ChangeCursor::after_index(floor),
            floor,
            live_at: 0,
            live_sent: HashSet::new(),
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
                    if change.index <= self.floor {
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
                    if change.index != self.live_at {
                        self.live_at = change.index;
                        self.live_sent.clear();
                    }
                    self.live_sent.insert(change.session.id.clone());
                    return Some(self.item(&change.session, at));
                }
                Err(RecvError::Lagged(_)) => {
                    self.catch_ups.inc();
                    // Every entry before the one being sent was sent whole: read again from
                    // that one.
                    let from = if self.live_at > self.floor {
                        self.live_at - 1
                    } else {
                        self.floor
                    };
                    self.cursor = ChangeCursor::after_index(from);
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Queues the next page of sessions changed after `cursor`, read by change position in one
    /// short read of the store; the catch-up ends with a page that is not full.
    fn catch_up_page(&mut self) {
        let (page, full) = self.reader.read(|s| {
            let found = s.changed_after(&self.cursor, self.user.as_ref(), CATCH_UP_PAGE);
            let full = found.len() == CATCH_UP_PAGE;
            let page: Vec<(EventPosition, SessionId, SessionView)> = found
                .into_iter()
                .filter_map(|x| x.changed.map(|p| (p, x.id.clone(), x.view(s.policy()))))
                .collect();
            (page, full)
        });
        for (at, id, view) in page {
            self.cursor = ChangeCursor::after(at.index, id.clone());
            self.floor = self.floor.max(at.index);
            if at.index == self.live_at && self.live_sent.contains(&id) {
                continue;
            }
            self.queue.push_back(Item::Session(at, Box::new(view)));
        }
        if !full {
            self.catching_up = false;
            self.live_at = 0;
            self.live_sent.clear();
        }
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

    /// The sessions the entry that changed the most of them changed, by id, and its index.
    fn largest_entry(reader: &StateReader) -> (u64, Vec<Session>) {
        let mut by_index: std::collections::BTreeMap<u64, Vec<Session>> = Default::default();
        reader.read(|s| {
            for x in s.all() {
                by_index
                    .entry(x.changed.unwrap().index)
                    .or_default()
                    .push(x.clone());
            }
        });
        let (index, mut sessions) = by_index.into_iter().max_by_key(|(_, v)| v.len()).unwrap();
        sessions.sort_by(|a, b| a.id.cmp(&b.id));
        (index, sessions)
    }

    #[test]
    fn an_entry_that_changes_many_sessions_is_sent_whole_live_and_after_a_lag() {
        rt().block_on(async {
            let dir = tempfile::TempDir::new().unwrap();
            let (_, mut sm) = crate::store::open(dir.path()).unwrap();
            sm.apply(sample_log()).await.unwrap();
            let reader = sm.reader();
            let (index, sessions) = largest_entry(&reader);
            assert!(sessions.len() >= 3, "the sample has an entry changing many");
            let change = |s: &Session| AppliedChange {
                index,
                session: s.clone(),
            };
            let ids = |v: &[Session]| v.iter().map(|s| s.id.to_string()).collect::<Vec<_>>();
            let got_id = |item: Option<Item>| match item {
                Some(Item::Session(at, v)) => {
                    assert_eq!(at.index, index);
                    v.session_id.to_string()
                }
                other => panic!("expected a session, got {other:?}"),
            };

            // Live: every session the entry changed, not only the first.
            let (tx, rx) = broadcast::channel(64);
            let mut f = Follow::new(reader.clone(), rx, None, None, Counter::default());
            for s in &sessions {
                tx.send(change(s)).unwrap();
            }
            let mut got = Vec::new();
            for _ in &sessions {
                got.push(got_id(f.next().await));
            }
            assert_eq!(got, ids(&sessions));
            drop(tx);
            assert!(f.next().await.is_none());

            // Lagging after the first: the rest of that entry from the store, the first not
            // again.
            let (tx, rx) = broadcast::channel(2);
            let catch_ups = Counter::default();
            let mut f = Follow::new(reader.clone(), rx, None, None, catch_ups.clone());
            tx.send(change(&sessions[0])).unwrap();
            assert_eq!(got_id(f.next().await), sessions[0].id.to_string());
            for s in sessions.iter().skip(1).chain(sessions.iter().skip(1)) {
                tx.send(change(s)).unwrap();
            }
            let mut got = Vec::new();
            for _ in 1..sessions.len() {
                got.push(got_id(f.next().await));
            }
            assert_eq!(got, ids(&sessions[1..]));
            assert_eq!(catch_ups.get(), 1);
            // Then what later entries changed; what is still in the feed was covered.
            drop(tx);
            while let Some(item) = f.next().await {
                match item {
                    Item::Session(at, _) => assert!(at.index > index),
                    other => panic!("expected a session, got {other:?}"),
                }
            }
        });
    }
}
