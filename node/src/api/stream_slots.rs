//! The bounds on open event streams (`GET /v1/events`): at most `[limits] max_event_streams` on
//! the node and `max_event_streams_per_key` for one API key.
//!
//! The bound on requests in progress (`api::bounded`) lets go of a request when its answer's
//! head is sent, and a stream's keep-alives keep its connection from ever being idle, so
//! neither bounds a stream. A stream instead holds a [`StreamSlot`], taken after the caller's
//! key is checked and before the stream starts, and moved into the stream's body: it is given
//! back when the body is dropped (the client went, or the node stopped). Slots are counted per
//! configured key name, never by anything a caller sends, so the map is as small as the
//! configuration.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::metrics::Metrics;

/// The open-stream budgets of the node and of each API key.
pub(crate) struct StreamSlots {
    node: Arc<Semaphore>,
    node_max: usize,
    /// By configured key name: fixed at start.
    per_key: HashMap<String, Arc<Semaphore>>,
    per_key_max: usize,
    metrics: Metrics,
}

/// One open stream's place in both budgets, and in `sessync_event_streams_open`; given back
/// when dropped.
pub(crate) struct StreamSlot {
    _key: OwnedSemaphorePermit,
    _node: OwnedSemaphorePermit,
    open: Gauge,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl StreamSlots {
    /// Budgets of `node_max` streams on the node and `per_key_max` for each of `keys` (the
    /// configured API keys' names).
    pub(crate) fn new<'a>(
        node_max: usize,
        per_key_max: usize,
        keys: impl IntoIterator<Item = &'a str>,
        metrics: Metrics,
    ) -> Self {
        StreamSlots {
            node: Arc::new(Semaphore::new(node_max)),
            node_max,
            per_key: keys
                .into_iter()
                .map(|k| (k.to_owned(), Arc::new(Semaphore::new(per_key_max))))
                .collect(),
            per_key_max,
            metrics,
        }
    }

    /// A slot for one more stream of the key named `key`, or 503 `unavailable` naming the
    /// bound that is full.
    pub(crate) fn take(&self, key: &str) -> Result<StreamSlot, ApiError> {
        let Some(budget) = self.per_key.get(key) else {
            // Callers are authenticated against the configured keys: not reached.
            return Err(ApiError::internal(format!(
                "no event stream budget for the API key `{key}`"
            )));
        };
        let Ok(key_permit) = budget.clone().try_acquire_owned() else {
            self.metrics.events.refused("per_key");
            return Err(ApiError::unavailable(format!(
                "the API key `{key}` has as many event streams open on this node as it may \
                 ([limits] max_event_streams_per_key = {}); close one, or retry later",
                self.per_key_max
            )));
        };
        let Ok(node_permit) = self.node.clone().try_acquire_owned() else {
            self.metrics.events.refused("node");
            return Err(ApiError::unavailable(format!(
                "this node has as many event streams open as it takes ([limits] \
                 max_event_streams = {}); retry later or on another node",
                self.node_max
            )));
        };
        let open = self.metrics.events.open.clone();
        open.inc();
        Ok(StreamSlot {
            _key: key_permit,
            _node: node_permit,
            open,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: &ApiError) -> &str {
        &e.body.error.message
    }

    #[test]
    fn slots_are_bounded_per_key_and_per_node_and_given_back_when_dropped() {
        let metrics = Metrics::new();
        let slots = StreamSlots::new(3, 2, ["a", "b"], metrics.clone());
        let a1 = slots.take("a").unwrap();
        let _a2 = slots.take("a").unwrap();
        let refused = slots.take("a").err().expect("a third for `a` is refused");
        assert!(
            message(&refused).contains("max_event_streams_per_key = 2"),
            "{refused:?}"
        );
        let _b1 = slots.take("b").unwrap();
        let refused = slots.take("b").err().expect("the node is full");
        assert!(
            message(&refused).contains("max_event_streams = 3"),
            "{refused:?}"
        );
        assert_eq!(metrics.events.open.get(), 3);
        drop(a1);
        assert_eq!(metrics.events.open.get(), 2);
        let _b2 = slots
            .take("b")
            .expect("a closed stream's slot is free again");
        assert!(slots.take("nobody").is_err());
    }
}
