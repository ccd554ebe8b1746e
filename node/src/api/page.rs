//! Pagination of the list endpoints (`GET /v1/users/{id}/sessions`, `GET /v1/users/active`,
//! `GET /v1/audit`): `limit` (default 100, at most 1000) and an opaque `cursor`, which is the
//! position after the last item of the previous page (base64url, so clients do not build it).
//! An answer with more to come carries `next_cursor`; a page may hold fewer than `limit` items
//! (even none) and still carry it, when the walk behind it is bounded ([`WALK_PER_ITEM`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::error::ApiError;

/// Items per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub(crate) const MAX_LIMIT: usize = 1000;
/// A page of a list whose walk passes over entries that are not items (`GET /v1/users/active`
/// walks the users holding live sessions, some of them with no active one) visits at most this
/// many entries per item asked for, then ends with the cursor where it stopped.
pub(crate) const WALK_PER_ITEM: usize = 10;
/// The longest cursor accepted (a position is a timestamp and an id, or a user id).
const MAX_CURSOR_BYTES: usize = 512;

/// A page request: how many items, and after which position.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    pub(crate) limit: usize,
    /// The decoded position, if a cursor was given.
    pub(crate) after: Option<String>,
}

impl Page {
    /// Reads the `limit` and `cursor` query parameters.
    pub(crate) fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Page, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LIMIT}"),
                    ))
                }
            },
        };
        let after = cursor
            .map(|c| {
                let bad = || {
                    ApiError::bad_request(
                        "cursor",
                        "is not a cursor this node gave (pass next_cursor as it came)",
                    )
                };
                if c.len() > MAX_CURSOR_BYTES {
                    return Err(bad());
                }
                let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
                String::from_utf8(bytes).map_err(|_| bad())
            })
            .transpose()?;
        Ok(Page { limit, after })
    }
}

/// The cursor for a position.
pub(crate) fn cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position.as_bytes())
}

/// Cuts `items` (in page order, possibly one more than the limit) to the page, with the cursor
/// of its last item when more follow.
pub(crate) fn cut<T>(
    mut items: Vec<T>,
    limit: usize,
    position: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().map(|last| cursor(&position(last)));
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked_and_round_trip() {
        let p = Page::parse(None, None).unwrap();
        assert_eq!((p.limit, p.after), (DEFAULT_LIMIT, None));
        for bad in ["0", "1001", "x", "-1"] {
            let e = Page::parse(Some(bad), None).unwrap_err();
            assert_eq!(e.body.error.field.as_deref(), Some("limit"));
        }
        let e = Page::parse(None, Some("%%%")).unwrap_err();
        assert_eq!(e.body.error.field.as_deref(), Some("cursor"));
        let c = cursor("1700000000000:s_abc");
        assert_eq!(
            Page::parse(Some("5"), Some(&c)).unwrap().after.as_deref(),
            Some("1700000000000:s_abc")
        );
        let (page, next) = cut(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page, vec![1, 2]);
        assert_eq!(next, Some(cursor("2")));
        assert_eq!(cut(vec![1, 2], 2, |n: &i32| n.to_string()).1, None);
    }
}
