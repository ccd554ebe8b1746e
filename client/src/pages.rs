//! Following the cursors of the list endpoints: the client asks page after page until the
//! answer carries no `next_cursor` (or it has as many items as the caller wanted), so callers
//! get whole lists.

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::ClientError;
use crate::paths::encode_component;

/// Pages one list is fetched in at most (1000 items each: a million items).
const MAX_PAGES: usize = 1000;

impl Client {
    /// GETs `path` and every following page, collecting the items `split` takes out of each
    /// answer (with its `next_cursor`); stops after `want` items when given.
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
        for _ in 0..MAX_PAGES {
            let page_path = match &cursor {
                None => path.to_owned(),
                Some(c) => format!("{path}{sep}cursor={}", encode_component(c)),
            };
            let answer: R = self.call::<(), _>(Method::GET, &page_path, None).await?;
            let (items, next) = split(answer);
            out.extend(items);
            if want.is_some_and(|w| out.len() >= w) {
                out.truncate(want.unwrap_or(usize::MAX));
                break;
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }
}
