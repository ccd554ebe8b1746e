//! The retry schedule of a call: which endpoint each attempt goes to, and the jittered,
//! exponentially growing pause between attempts.

use std::time::Duration;

use rand::Rng;

/// Backoff before the second attempt; it doubles with each attempt up to [`MAX_BACKOFF`].
pub(crate) const BASE_BACKOFF: Duration = Duration::from_millis(25);
/// Longest backoff between two attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(800);

/// The endpoint index for attempt `attempt` of a call that started at `start`.
pub(crate) fn endpoint_for_attempt(start: usize, attempt: usize, len: usize) -> usize {
    (start + attempt) % len
}

/// The upper bound of the backoff after failed attempt `attempt` (0-based).
pub(crate) fn backoff_ceiling(attempt: usize) -> Duration {
    let factor = 1u32 << attempt.min(16);
    BASE_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// A jittered backoff: uniform in [ceiling/2, ceiling].
pub(crate) fn jittered_backoff(attempt: usize) -> Duration {
    let ceiling = backoff_ceiling(attempt);
    let half = ceiling / 2;
    let extra = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_wraps_around_the_list() {
        let order: Vec<usize> = (0..6).map(|a| endpoint_for_attempt(1, a, 3)).collect();
        assert_eq!(order, vec![1, 2, 0, 1, 2, 0]);
        assert_eq!(endpoint_for_attempt(0, 0, 1), 0);
        assert_eq!(endpoint_for_attempt(0, 5, 1), 0);
    }

    #[test]
    fn backoff_grows_capped_and_jittered() {
        assert_eq!(backoff_ceiling(0), Duration::from_millis(25));
        assert_eq!(backoff_ceiling(1), Duration::from_millis(50));
        assert_eq!(backoff_ceiling(5), Duration::from_millis(800));
        assert_eq!(backoff_ceiling(60), MAX_BACKOFF);
        for attempt in 0..8 {
            let d = jittered_backoff(attempt);
            let c = backoff_ceiling(attempt);
            assert!(d >= c / 2 && d <= c, "{d:?} vs {c:?}");
        }
    }
}
