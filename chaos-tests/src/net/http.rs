//! Just enough HTTP/1.1 for the proxies: reading a request head, finding a header in it,
//! splitting a client's byte stream into whole requests, and reading one response.
//!
//! Everything is bounded by [`HEAD_LIMIT`]; requests with a chunked body are not split (the
//! nodes' clients always send a `Content-Length`).

use anyhow::{bail, Context};
use sessync_proto::wire::{FORWARDED_HEADER, SENDER_HEADER};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most the proxies hold of one request head, or of one whole request they keep.
pub(crate) const HEAD_LIMIT: usize = 64 * 1024;

/// The length of the head at the start of `buf` (through the blank line), once complete.
pub(crate) fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The head's lines after the first (request or status) line, up to the blank line.
fn header_lines(head: &[u8]) -> impl Iterator<Item = &str> {
    let end = head_len(head).unwrap_or(head.len());
    std::str::from_utf8(&head[..end])
        .unwrap_or("")
        .split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
}

/// The value of header `name` (any case) in a head.
pub(crate) fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a str> {
    header_lines(head).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The first line's second word: a request's path, or a response's status code.
fn second_word(head: &[u8]) -> Option<&str> {
    let end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
    std::str::from_utf8(&head[..end])
        .ok()?
        .split_whitespace()
        .nth(1)
}

/// A request's path (with its query), from its head.
pub(crate) fn request_path(head: &[u8]) -> Option<&str> {
    second_word(head)
}

/// The node that sent a request, by its head: `x-sessync-from`, else
/// `x-sessync-forwarded-by`; 0 (a client) when neither names one.
pub(crate) fn sender(head: &[u8]) -> u64 {
    [SENDER_HEADER, FORWARDED_HEADER]
        .iter()
        .find_map(|name| header(head, name)?.parse().ok())
        .unwrap_or(0)
}

fn is_chunked(head: &[u8]) -> bool {
    header(head, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// Reads from `r` until a whole head has arrived, [`HEAD_LIMIT`] bytes were read, or the
/// stream ends; returns everything read (which may go past the head). The caller bounds the
/// time.
pub(crate) async fn read_head(r: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while head_len(&buf).is_none() && buf.len() < HEAD_LIMIT {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

/// Splits the bytes a client sends into whole requests (head and `Content-Length` body).
/// Gives up for good on a chunked body or a request over [`HEAD_LIMIT`]: it is then [`lost`].
///
/// [`lost`]: Requests::lost
#[derive(Default)]
pub(crate) struct Requests {
    buf: Vec<u8>,
    lost: bool,
}

impl Requests {
    /// Takes the next bytes of the stream; returns the requests they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut whole = Vec::new();
        if self.lost {
            return whole;
        }
        self.buf.extend_from_slice(bytes);
        while let Some(head) = head_len(&self.buf) {
            let body = match header(&self.buf[..head], "content-length") {
                Some(v) => v.parse::<usize>().ok(),
                None => Some(0),
            };
            let total = match body {
                Some(body) if !is_chunked(&self.buf[..head]) => head + body,
                _ => return self.give_up(whole),
            };
            if total > HEAD_LIMIT {
                return self.give_up(whole);
            }
            if self.buf.len() < total {
                break;
            }
            whole.push(self.buf.drain(..total).collect());
        }
        if self.buf.len() > HEAD_LIMIT {
            return self.give_up(whole);
        }
        whole
    }

    fn give_up(&mut self, whole: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        self.lost = true;
        self.buf = Vec::new();
        whole
    }

    /// Whether the stream could not be split (see the type's docs).
    pub(crate) fn lost(&self) -> bool {
        self.lost
    }
}

/// The body of a chunked message at the start of `data`, once all of it has arrived.
fn dechunk(data: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = data[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&data[at..at + eol]).context("a chunk size line")?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("a chunk size, not {line:?}"))?;
        at += eol + 2;
        if size == 0 {
            return Ok(Some(body));
        }
        if data.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[at..at + size]);
        at += size + 2;
    }
}

/// Reads one response from `r`: its status and body (`Content-Length`, chunked, or up to the
/// end of the stream). The caller bounds the time.
pub(crate) async fn read_response(
    r: &mut (impl AsyncRead + Unpin),
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut buf = read_head(r).await?;
    let Some(head) = head_len(&buf) else {
        bail!("no whole response head in {} bytes", buf.len());
    };
    let status = second_word(&buf)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| {
            format!(
                "a status line, not {:?}",
                String::from_utf8_lossy(&buf[..head])
            )
        })?;
    let mut chunk = [0u8; 4096];
    let chunked = is_chunked(&buf[..head]);
    let length = match header(&buf[..head], "content-length") {
        Some(v) => Some(v.parse::<usize>().context("a Content-Length")?),
        None => None,
    };
    loop {
        if chunked {
            if let Some(body) = dechunk(&buf[head..])? {
                return Ok((status, body));
            }
        } else if let Some(len) = length {
            if buf.len() >= head + len {
                return Ok((status, buf[head..head + len].to_vec()));
            }
        }
        if buf.len() > head + 16 * HEAD_LIMIT {
            bail!("the response is over {} bytes", 16 * HEAD_LIMIT);
        }
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            if chunked || length.is_some() {
                bail!("the stream ended inside the response body");
            }
            return Ok((status, buf[head..].to_vec()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sender_in_any_case() {
        let h = b"POST /raft/append HTTP/1.1\r\nhost: x\r\nX-Sessync-From: 3\r\n\r\n{}";
        assert_eq!(sender(h), 3);
        let h = b"POST /v1/sessions HTTP/1.1\r\nx-sessync-forwarded-by: 2\r\n\r\n";
        assert_eq!(sender(h), 2);
        let h = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nx-sessync-from: 9\r\n";
        assert_eq!(sender(h), 0, "only the head counts");
        assert_eq!(request_path(b"GET /a/b?c HTTP/1.1\r\n\r\n"), Some("/a/b?c"));
    }

    #[test]
    fn splits_requests_across_chunks() {
        let mut r = Requests::default();
        let one = b"POST /a HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc".to_vec();
        let two = b"GET /b HTTP/1.1\r\n\r\n".to_vec();
        let mut stream = one.clone();
        stream.extend_from_slice(&two);
        let (x, y) = stream.split_at(10);
        assert!(r.push(x).is_empty());
        assert_eq!(r.push(y), vec![one, two]);
        assert!(!r.lost());
        r.push(b"POST /c HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
        assert!(r.lost());
    }

    #[test]
    fn dechunks_a_body() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            Some(b"abcde".to_vec())
        );
        assert_eq!(dechunk(b"3\r\nab").unwrap(), None);
    }
}
