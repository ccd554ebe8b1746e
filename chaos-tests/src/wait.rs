//! Bounded polling: every wait of the harness checks a condition every [`POLL_INTERVAL`] until
//! it holds, fails, or its time is up, and then says what it last saw.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a wait checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The outcome of one check of a condition.
pub(crate) enum Check<T> {
    /// The condition holds.
    Done(T),
    /// Not yet, and why (kept for the timeout message).
    NotYet(String),
    /// It never will: stop waiting.
    Fail(anyhow::Error),
}

/// Checks `check` until it is done or fails, for at most `timeout`.
pub(crate) async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let why = match check().await {
            Check::Done(v) => return Ok(v),
            Check::Fail(e) => return Err(e.context(format!("while waiting for {what}"))),
            Check::NotYet(why) => why,
        };
        if Instant::now() + POLL_INTERVAL > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}; last seen: {why}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn done_after_some_checks() {
        let n = AtomicU32::new(0);
        let v = wait_for("three checks", Duration::from_secs(5), || async {
            match n.fetch_add(1, Ordering::SeqCst) {
                0..=1 => Check::NotYet("early".into()),
                k => Check::Done(k),
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 2);
    }

    #[tokio::test]
    async fn timeout_names_what_and_last_reason() {
        let started = std::time::Instant::now();
        let e = wait_for::<(), _, _>("godot", Duration::from_millis(200), || async {
            Check::NotYet("still waiting".into())
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("godot") && e.contains("still waiting"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn failure_stops_at_once() {
        let e = wait_for::<(), _, _>("x", Duration::from_secs(30), || async {
            Check::Fail(anyhow::anyhow!("node exited"))
        })
        .await
        .unwrap_err();
        assert!(format!("{e:#}").contains("node exited"));
    }
}
