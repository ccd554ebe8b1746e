//! The load generator: closed loop (N clients, each sending its next request when the last
//! is answered, for a fixed time) for throughput, and open loop (requests sent at a fixed
//! rate whatever the answers do, latency counted from when each request was due, so a stall
//! is not hidden by the clients waiting it out) for latency.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

/// One measured point.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Point {
    /// Concurrent clients (closed loop) or the request rate in requests per second (open).
    pub clients: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The first error seen, to tell why a point has errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 120 s, 3 significant digits.
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 120_000_000)
}

#[derive(Default)]
struct Tally {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn record(&mut self, r: anyhow::Result<()>) {
        match r {
            Ok(()) => self.ops += 1,
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{e:#}"));
                }
            }
        }
    }
}

fn point(
    clients: usize,
    rate: Option<u64>,
    tally: Tally,
    h: &Histogram<u64>,
    elapsed: Duration,
) -> Point {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let seconds = elapsed.as_secs_f64();
    Point {
        clients,
        rate,
        ops: tally.ops,
        errors: tally.errors,
        seconds,
        throughput: tally.ops as f64 / seconds,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: h.max() as f64 / 1000.0,
        first_error: tally.first_error,
    }
}

/// Runs `clients` clients, each calling `op(client index, request number)` back to back, for
/// `duration` after a `warmup` that is not counted.
pub(crate) async fn closed_loop<F, Fut>(
    clients: usize,
    warmup: Duration,
    duration: Duration,
    op: F,
) -> Point
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let op = op.clone();
        tasks.spawn(async move {
            let mut h = histogram();
            let mut tally = Tally::default();
            let mut n = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let r = op(c, n).await;
                n += 1;
                if t0 >= start {
                    h.record(micros(t0.elapsed())).ok();
                    tally.record(r);
                }
            }
            (h, tally)
        });
    }
    let mut h = histogram();
    let mut tally = Tally::default();
    while let Some(Ok((wh, wt))) = tasks.join_next().await {
        h.add(&wh).ok();
        tally.ops += wt.ops;
        tally.errors += wt.errors;
        tally.first_error = tally.first_error.or(wt.first_error);
    }
    point(clients, None, tally, &h, duration)
}

/// Sends `rate` requests per second for `duration`, each as its own task calling `op(request
/// number)`, and times each from the moment it was due. At most `max_in_flight` are
/// outstanding; a request due while that many are is counted as an error, not queued.
pub(crate) async fn open_loop<F, Fut>(
    rate: u64,
    duration: Duration,
    max_in_flight: usize,
    op: F,
) -> Point
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let shared = Arc::new(Mutex::new((histogram(), Tally::default())));
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let start = Instant::now();
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        let due = start + gap.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shared
                .lock()
                .1
                .record(Err(anyhow::anyhow!("{max_in_flight} requests outstanding")));
            continue;
        };
        let (op, shared) = (op.clone(), shared.clone());
        tasks.spawn(async move {
            let r = op(n).await;
            let took = micros(due.elapsed());
            let mut s = shared.lock();
            s.0.record(took).ok();
            s.1.record(r);
            drop(permit);
        });
        // Reap finished tasks as we go so the set does not grow with the run.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    let (h, tally) = std::mem::replace(&mut *shared.lock(), (histogram(), Tally::default()));
    point(max_in_flight, Some(rate), tally, &h, elapsed)
}
