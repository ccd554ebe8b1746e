//! A burst of 1,000 fan-outs to a slow peer (every request to it held 800 ms) leaves site A's
//! session API answering: every call of a validate/login loop running through the whole burst
//! succeeds. Latencies are printed as ratios to a baseline measured just before, never
//! asserted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fed::{login, poll, site, user};
use futures::StreamExt;
use sessync_chaos_tests::{ClusterOptions, Sites, SitesOptions};
use sessync_proto::api::{Consistency, FanoutStatus, InvalidateRequest, ValidateRequest};

const BURST: usize = 1000;
const CONCURRENCY: usize = 32;
/// Calls of the baseline probe; the probe during the burst runs until the burst ends, at most
/// `MAX_PROBES` calls.
const PROBES: usize = 200;
const MAX_PROBES: usize = 100_000;

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_a_slow_peer_keeps_the_session_api_answering() -> anyhow::Result<()> {
    let sites = Sites::start(SitesOptions {
        a: ClusterOptions {
            nodes: 3,
            policy_toml: "max_concurrent_sessions = 0".into(),
            ..Default::default()
        },
        b: ClusterOptions {
            nodes: 1,
            ..Default::default()
        },
        slow_link: Some(Duration::from_millis(800)),
        proxy_both_ways: false,
    })
    .await?;
    let a = sites.a.app_client();
    let token = login(&a, "probe").await?.token;
    let validate = ValidateRequest {
        token,
        touch: false,
        consistency: Consistency::Linearizable,
    };
    // The probe: validate (and now and then a login), one after another, until `done` or
    // `count` calls.
    let probe = |a: sessync_client::Client,
                 v: ValidateRequest,
                 count: usize,
                 done: Arc<AtomicBool>| async move {
        let mut took = Vec::with_capacity(count);
        for i in 0..count {
            if done.load(Ordering::Relaxed) {
                break;
            }
            let t = Instant::now();
            if i % 10 == 9 {
                login(&a, &format!("probe-{i}")).await?;
            } else {
                let r = a.validate(&v).await?;
                anyhow::ensure!(r.valid, "probe {i}: the session is not valid: {r:?}");
            }
            took.push(t.elapsed());
        }
        anyhow::Ok(took)
    };
    let never = Arc::new(AtomicBool::new(false));
    let baseline = probe(a.clone(), validate.clone(), PROBES, never).await?;
    let burst_done = Arc::new(AtomicBool::new(false));

    let burst = {
        let (a, burst_done) = (a.clone(), burst_done.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let results: Vec<_> = futures::stream::iter(0..BURST)
                .map(|i| {
                    let a = a.clone();
                    async move {
                        let req = InvalidateRequest {
                            session_id: None,
                            targets: vec![site("site-b")],
                        };
                        a.invalidate(&user(&format!("burst-{i}")), &req).await
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            burst_done.store(true, Ordering::Relaxed);
            (results, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = probe(a.clone(), validate.clone(), MAX_PROBES, burst_done).await?;
    let (results, burst_took) = burst.await?;
    let mut queued = 0;
    for r in results {
        match r?.fanout[&site("site-b")] {
            FanoutStatus::Queued => queued += 1,
            FanoutStatus::Delivered => {}
            other => anyhow::bail!("unexpected fan-out status {other:?}"),
        }
    }

    let admin = sites.a.admin_client();
    let drained_from = Instant::now();
    poll("A's outbox to drain", Duration::from_secs(240), || async {
        Ok((admin.federation_status().await?.peers[0].queued == 0).then_some(()))
    })
    .await?;
    let ratio = |p| {
        percentile(during.clone(), p).as_secs_f64() / percentile(baseline.clone(), p).as_secs_f64()
    };
    println!(
        "burst of {BURST} fan-outs in {:.1} s ({queued} answered queued); outbox drained {:.1} s later; \
         {} probe calls during the burst, all answered; latency during/baseline: p50 x{:.2}, p99 x{:.2} \
         (baseline p50 {:?}, p99 {:?})",
        burst_took.as_secs_f64(),
        drained_from.elapsed().as_secs_f64(),
        during.len(),
        ratio(0.5),
        ratio(0.99),
        percentile(baseline.clone(), 0.5),
        percentile(baseline, 0.99),
    );
    sites.a.check_no_crashes()?;
    sites.b.check_no_crashes()
}
