//! `GET /v1/events` as a stream of typed events that survives node failures: when the stream
//! breaks, ends or goes quiet past the keep-alives, [`Events`] reconnects to the next endpoint
//! with `Last-Event-ID` set to the last event it returned, so the node first sends every session
//! changed since (see the event docs in `sessync_proto::events`). It gives up, with the last
//! error, after `rounds` passes over the endpoints without an event; a refusal that retrying
//! cannot fix (a wrong key, a bad id) ends it at once.

use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use sessync_proto::events::{SessionEvent, TrimmedEvent, LAST_EVENT_ID_HEADER, SESSION, TRIMMED};
use sessync_proto::UserId;

use crate::client::Client;
use crate::error::{describe_reqwest, ClientError};
use crate::paths::encode_component;
use crate::retry::jittered_backoff;

/// Longest silence before the stream is taken for dead: the node sends a keep-alive every 15 s.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// Deadline to connect and get the stream's answer head.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One event of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// A session was created, blocked, activated or ended: its state now. `id` is the position
    /// to resume after ([`Events::last_event_id`] follows it).
    Session {
        /// The event's id (`<index>-<millis>`).
        id: String,
        /// The session after the change.
        event: Box<SessionEvent>,
    },
    /// The position asked for was older than what retention keeps: some changes may be gone, so
    /// reload what you keep of the users' sessions. The stream goes on.
    Trimmed(TrimmedEvent),
}

type Raw = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// An open event stream; see the module docs. Made by [`Client::events`].
pub struct Events {
    client: Client,
    path: String,
    last_id: Option<String>,
    raw: Option<Raw>,
    endpoint: usize,
    /// Connections in a row that brought no event.
    failures: usize,
    done: bool,
}

impl Client {
    /// `GET /v1/events` (any key): the session changes of every user, or of `user`, from now on
    /// or after `last_event_id` (an id an earlier stream returned). Returns once connected (with
    /// the same retries as a reconnection); reconnects by itself afterwards, see [`Events`].
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// use sessync_client::events::StreamEvent;
    /// let mut events = client.events(None, None).await?;
    /// while let Some(e) = events.next().await {
    ///     match e? {
    ///         StreamEvent::Session { event, .. } => println!("{:?}", event.session.state),
    ///         StreamEvent::Trimmed(_) => println!("reload: some changes are gone"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn events(
        &self,
        user: Option<&UserId>,
        last_event_id: Option<String>,
    ) -> Result<Events, ClientError> {
        let path = match user {
            Some(u) => format!("/v1/events?user_id={}", encode_component(u.as_str())),
            None => "/v1/events".to_owned(),
        };
        let mut events = Events {
            endpoint: self.current.load(std::sync::atomic::Ordering::Relaxed),
            client: self.clone(),
            path,
            last_id: last_event_id,
            raw: None,
            failures: 0,
            done: false,
        };
        // Connected before this returns, so every change after it is in the stream.
        while events.raw.is_none() {
            let at = events.endpoint;
            match connect(&events.client, &events.path, events.last_id.as_deref(), at).await {
                Ok(raw) => events.raw = Some(raw),
                Err(e) => {
                    if let Some(fatal) = events.failed(e).await {
                        return Err(fatal);
                    }
                }
            }
        }
        Ok(events)
    }
}

impl Events {
    /// The id of the last event returned (or the one the stream was opened after).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The next event; None once the stream gave up (after returning the error why).
    pub async fn next(&mut self) -> Option<Result<StreamEvent, ClientError>> {
        loop {
            if self.done {
                return None;
            }
            let Some(raw) = self.raw.as_mut() else {
                let at = self.endpoint;
                match connect(&self.client, &self.path, self.last_id.as_deref(), at).await {
                    Ok(raw) => self.raw = Some(raw),
                    Err(e) => {
                        if let Some(fatal) = self.failed(e).await {
                            return Some(Err(fatal));
                        }
                    }
                }
                continue;
            };
            let error = match tokio::time::timeout(IDLE_TIMEOUT, raw.next()).await {
                Ok(Some(Ok(ev))) => match self.decode(ev) {
                    Ok(Some(e)) => return Some(Ok(e)),
                    Ok(None) => continue,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
                Ok(Some(Err(e))) => ClientError::Transport(format!("the event stream broke: {e}")),
                Ok(None) => ClientError::Transport("the node closed the event stream".into()),
                Err(_) => {
                    ClientError::Transport(format!("no event or keep-alive for {IDLE_TIMEOUT:?}"))
                }
            };
            self.raw = None;
            if let Some(fatal) = self.failed(error).await {
                return Some(Err(fatal));
            }
        }
    }

    /// This stream as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Result<StreamEvent, ClientError>> + Send {
        futures::stream::unfold(self, |mut e| async move { e.next().await.map(|x| (x, e)) })
    }

    /// Counts a failed connection and waits before the next one on another endpoint; returns
    /// the error to end with when retrying is over or cannot help.
    async fn failed(&mut self, e: ClientError) -> Option<ClientError> {
        let retryable = matches!(
            e,
            ClientError::Transport(_) | ClientError::Unavailable { .. }
        ) || e.status().is_some_and(|s| s >= 500);
        self.failures += 1;
        let budget = self.client.endpoints.len() * self.client.rounds.max(1) as usize;
        if !retryable || self.failures > budget {
            self.done = true;
            return Some(e);
        }
        self.endpoint += 1;
        tokio::time::sleep(jittered_backoff(self.failures - 1)).await;
        None
    }

    /// The typed event, or None for one this client does not know (skipped).
    fn decode(&mut self, ev: Event) -> Result<Option<StreamEvent>, ClientError> {
        let bad = |e: serde_json::Error| ClientError::Decode(format!("`{}` event: {e}", ev.event));
        match ev.event.as_str() {
            SESSION => {
                let event: Box<SessionEvent> = serde_json::from_str(&ev.data).map_err(bad)?;
                self.failures = 0;
                self.last_id = Some(ev.id.clone());
                Ok(Some(StreamEvent::Session { id: ev.id, event }))
            }
            TRIMMED => {
                let t: TrimmedEvent = serde_json::from_str(&ev.data).map_err(bad)?;
                self.failures = 0;
                Ok(Some(StreamEvent::Trimmed(t)))
            }
            _ => Ok(None),
        }
    }
}

/// Opens the stream on endpoint `endpoint` (modulo the list; the pinned one if pinned).
async fn connect(
    c: &Client,
    path: &str,
    last_id: Option<&str>,
    endpoint: usize,
) -> Result<Raw, ClientError> {
    let idx = c.pinned.unwrap_or(endpoint % c.endpoints.len());
    let url = format!("{}{path}", c.endpoints[idx]);
    let mut req = c
        .http
        .get(&url)
        .header(ACCEPT, HeaderValue::from_static("text/event-stream"));
    if !c.api_key.is_empty() {
        let value = HeaderValue::from_str(&format!("Bearer {}", c.api_key))
            .map_err(|_| ClientError::InvalidArgument("API key is not a header value".into()))?;
        req = req.header(AUTHORIZATION, value);
    }
    if let Some(id) = last_id {
        req = req.header(LAST_EVENT_ID_HEADER, id);
    }
    let resp = tokio::time::timeout(CONNECT_TIMEOUT, req.send())
        .await
        .map_err(|_| {
            ClientError::Transport(format!("GET {url}: no answer in {CONNECT_TIMEOUT:?}"))
        })?
        .map_err(|e| ClientError::Transport(format!("GET {url}: {}", describe_reqwest(&e))))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(ClientError::from_response(status, &body));
    }
    Ok(Box::pin(resp.bytes_stream().eventsource()))
}
