//! A cap on the requests in progress from one source on one group of routes, so that one
//! address cannot hold the whole group's budget (`[limits] max_concurrent_requests`) while
//! others wait: the peer-site routes use it, whose callers are a few sites' nodes.
//!
//! Sources are grouped as the listener groups them ([`crate::source::source_of`]: an IPv4
//! address, an IPv6 /64). The table holds only sources with a request in progress, so it is
//! bounded by the group's own budget, and nothing is kept once a request ends.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::error::ApiError;

/// The requests in progress per source, and the most one source may have.
#[derive(Clone)]
pub(crate) struct SourceCap {
    per_source: usize,
    in_progress: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl SourceCap {
    pub(crate) fn new(per_source: usize) -> Self {
        Self {
            per_source: per_source.max(1),
            in_progress: Arc::default(),
        }
    }

    /// A slot for `source`, given back when the guard drops; `None` past the cap.
    fn take(&self, source: IpAddr) -> Option<Slot> {
        let mut t = self.in_progress.lock();
        let n = t.entry(source).or_default();
        if *n >= self.per_source {
            if *n == 0 {
                t.remove(&source);
            }
            return None;
        }
        *n += 1;
        Some(Slot {
            cap: self.clone(),
            source,
        })
    }
}

/// One request in progress from one source.
struct Slot {
    cap: SourceCap,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.cap.in_progress.lock();
        if let Some(n) = t.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.source);
            }
        }
    }
}

/// Middleware: past the cap for its source, a request is answered 503 at once.
pub(crate) async fn limit(State(cap): State<SourceCap>, req: Request, next: Next) -> Response {
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| crate::source::source_of(c.0.ip()));
    let Some(source) = source else {
        return next.run(req).await;
    };
    let Some(_slot) = cap.take(source) else {
        return ApiError::unavailable(format!(
            "this address has {} peer-site requests in progress, as many as one source may; \
             retry once they are answered",
            cap.per_source
        ))
        .into_response();
    };
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_holds_at_most_its_share_and_gives_it_back() {
        let cap = SourceCap::new(2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = cap.take(a).unwrap();
        let _second = cap.take(a).unwrap();
        assert!(cap.take(a).is_none(), "a third from one source is refused");
        assert!(cap.take(b).is_some(), "another source is not held up");
        drop(first);
        assert!(cap.take(a).is_some());
        drop(_second);
        assert!(
            cap.in_progress.lock().is_empty(),
            "nothing is kept once requests end"
        );
    }
}
