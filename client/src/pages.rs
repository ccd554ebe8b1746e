//! Following the cursors of the list endpoints: the client asks page after page until the
//! answer carries no `next_cursor` (or it has as many items as the caller wanted), so callers
//! get whole lists.
//!
//! A caller's limit is a limit on what it gets, not a page size: pages are at most
//! [`MAX_PAGE`] items (the node's bound), the last one only as large as still wanted. With no
//! limit every cursor is followed; what bounds the loop is that each page must move on, so a
//! cursor the node gives twice is an error, never an endless loop or a list cut short.

use std::collections::HashSet;

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::ClientError;
use crate::paths::encode_component;

/// The largest page a node gives (its `limit` is 1 to 1000).
const MAX_PAGE: usize = 1000;

impl Client {
    /// GETs `path` (with its filters, no `limit` or `cursor`) and every following page,
    /// collecting the items `split` takes out of each answer (with its `next_cursor`); stops
    /// after `want` items when given.
    pub(crate) async fn all_pages<R, T>(
        &self,
        path: &str,
        want: Option<usize>,
        split: impl Fn(R) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>, ClientError>
    where
        R: DeserializeOwned,
    {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let size = match want {
                Some(w) if w <= out.len() => break,
                Some(w) => (w - out.len()).min(MAX_PAGE),
                None => MAX_PAGE,
            };
            let mut page_path = format!("{path}{sep}limit={size}");
            if let Some(c) = &cursor {
                page_path.push_str("&cursor=");
                page_path.push_str(&encode_component(c));
            }
            let answer: R = self.call::<(), _>(Method::GET, &page_path, None).await?;
            let (items, next) = split(answer);
            out.extend(items);
            let Some(next) = next else { break };
            if !seen.insert(next.clone()) {
                return Err(ClientError::Decode(format!(
                    "{path}: the node gave the cursor {next:?} a second time, so the list \
                     does not move on; stopped after {} items",
                    out.len()
                )));
            }
            cursor = Some(next);
        }
        if let Some(w) = want {
            out.truncate(w);
        }
        Ok(out)
    }
}
