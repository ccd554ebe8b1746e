//! The workloads, run the same way against either system: create, validate (linearizable and
//! local), and the login-day mix, closed loop at each client count, then open loop at a fixed
//! rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use parking_lot::Mutex;
use rand::Rng;
use serde::Serialize;

use crate::load::{closed_loop, open_loop, Point};
use crate::target::{Conn, Live, Read, System};

/// What a run measures and for how long.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Plan {
    pub clients: Vec<usize>,
    pub duration: Duration,
    pub warmup: Duration,
    /// Live sessions the validate workloads and the login-day mix run over.
    pub pool: u64,
    /// The workloads to run, in order.
    pub workloads: Vec<Workload>,
}

/// A workload's name in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Workload {
    /// sessync create; etcd put with a lease.
    Create,
    /// sessync validate, linearizable, no touch; etcd linearizable get.
    ValidateLinearizable,
    /// sessync validate, local, no touch; etcd serializable get.
    ValidateLocal,
    /// 1 create : 50 linearizable validates with touch : 1 end, over the pool.
    LoginDay,
}

impl Workload {
    pub(crate) const ALL: [Workload; 4] = [
        Workload::Create,
        Workload::ValidateLinearizable,
        Workload::ValidateLocal,
        Workload::LoginDay,
    ];

    /// The name `--only` takes and file names use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::ValidateLinearizable => "validate-linearizable",
            Workload::ValidateLocal => "validate-local",
            Workload::LoginDay => "login-day",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Workload::Create => "create (etcd: put with lease)",
            Workload::ValidateLinearizable => "validate linearizable (etcd: linearizable get)",
            Workload::ValidateLocal => "validate local (etcd: serializable get)",
            Workload::LoginDay => "login-day mix 1:50:1 (etcd: get + put when touched)",
        }
    }
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Row {
    pub system: System,
    pub workload: Workload,
    /// `closed` (throughput at N clients) or `open` (latency at a fixed rate).
    pub mode: &'static str,
    #[serde(flatten)]
    pub point: Point,
}

/// What the requests of one system's workloads share.
#[derive(Default)]
pub(crate) struct Shared {
    /// Numbers users: every create logs a new user in.
    pub next_user: AtomicU64,
    /// Sessions the login-day mix ended.
    ended: AtomicU64,
    /// The live sessions validates pick from; the login-day mix adds and ends some.
    pub pool: Mutex<Vec<Live>>,
}

/// One system under load: its clients and what their requests share.
pub(crate) struct Bench {
    pub system: System,
    pub conns: Arc<Vec<Conn>>,
    pub shared: Arc<Shared>,
}

impl Bench {
    pub(crate) fn new(system: System, conns: Vec<Conn>) -> Bench {
        Bench {
            system,
            conns: Arc::new(conns),
            shared: Arc::new(Shared::default()),
        }
    }

    /// Sessions live now: every create made one (a failed create counts too: it may have
    /// been applied), every end of the mix ended one.
    pub(crate) fn live(&self) -> u64 {
        let s = &self.shared;
        s.next_user.load(Ordering::Relaxed) - s.ended.load(Ordering::Relaxed)
    }

    /// Numbers for `n` new users.
    pub(crate) fn take_users(&self, n: u64) -> u64 {
        self.shared.next_user.fetch_add(n, Ordering::Relaxed)
    }

    /// Creates `n` sessions into the pool, with up to 64 clients at a time.
    pub(crate) async fn fill_pool(&self, n: u64) -> anyhow::Result<()> {
        let first = self.take_users(n);
        let k = self.conns.len().min(64);
        let made = crate::target::preload(&self.conns[..k], n, first).await?;
        self.shared.pool.lock().extend(made);
        Ok(())
    }

    /// The closed-loop point of `w` at `clients` clients.
    pub(crate) async fn closed(
        &self,
        w: Workload,
        clients: usize,
        plan: &Plan,
    ) -> anyhow::Result<Row> {
        if clients > self.conns.len() {
            bail!("{clients} clients asked, {} connected", self.conns.len());
        }
        let (conns, shared) = (self.conns.clone(), self.shared.clone());
        let point = closed_loop(clients, plan.warmup, plan.duration, move |c, _| {
            let (conns, shared) = (conns.clone(), shared.clone());
            async move { step(w, &conns[c], &shared).await }
        })
        .await;
        Ok(self.row(w, "closed", point))
    }

    /// The open-loop point of `w` at `rate` requests per second.
    pub(crate) async fn open(&self, w: Workload, rate: u64, plan: &Plan) -> Row {
        let (conns, shared) = (self.conns.clone(), self.shared.clone());
        let point = open_loop(rate, plan.duration, 4096, move |n| {
            let (conns, shared) = (conns.clone(), shared.clone());
            async move { step(w, &conns[n as usize % conns.len()], &shared).await }
        })
        .await;
        self.row(w, "open", point)
    }

    fn row(&self, workload: Workload, mode: &'static str, point: Point) -> Row {
        Row {
            system: self.system,
            workload,
            mode,
            point,
        }
    }
}

fn pick(pool: &Mutex<Vec<Live>>) -> anyhow::Result<Live> {
    let p = pool.lock();
    if p.is_empty() {
        bail!("no live session to pick");
    }
    Ok(p[rand::thread_rng().gen_range(0..p.len())].clone())
}

fn must_be_valid(valid: bool) -> anyhow::Result<()> {
    if valid {
        Ok(())
    } else {
        bail!("a live session validated as not valid")
    }
}

/// One request of workload `w`.
async fn step(w: Workload, conn: &Conn, s: &Shared) -> anyhow::Result<()> {
    let new_user = || s.next_user.fetch_add(1, Ordering::Relaxed);
    let roll = rand::thread_rng().gen_range(0..52u32);
    match w {
        Workload::Create => conn.create(new_user()).await.map(drop),
        Workload::ValidateLinearizable => must_be_valid(
            conn.validate(&pick(&s.pool)?, Read::Linearizable, false)
                .await?,
        ),
        Workload::ValidateLocal => {
            must_be_valid(conn.validate(&pick(&s.pool)?, Read::Local, false).await?)
        }
        Workload::LoginDay => match roll {
            0 => {
                let made = conn.create(new_user()).await?;
                s.pool.lock().push(made);
                Ok(())
            }
            1 => {
                let gone = {
                    let mut p = s.pool.lock();
                    if p.is_empty() {
                        bail!("no live session to end");
                    }
                    let i = rand::thread_rng().gen_range(0..p.len());
                    p.swap_remove(i)
                };
                s.ended.fetch_add(1, Ordering::Relaxed);
                conn.end(&gone).await
            }
            // A session ended by a concurrent pick answers "not valid": an answer.
            _ => conn
                .validate(&pick(&s.pool)?, Read::Linearizable, true)
                .await
                .map(drop),
        },
    }
}

/// Runs every workload's closed-loop points on one system, in order; with `profile`, the
/// point at the most clients of each is profiled into that folder (processes `pids`).
pub(crate) async fn closed_points(
    bench: &Bench,
    plan: &Plan,
    profile: Option<(&std::path::Path, &[u32])>,
) -> anyhow::Result<Vec<Row>> {
    let most = plan.clients.iter().copied().max().unwrap_or(1);
    let mut rows = Vec::new();
    for &w in &plan.workloads {
        if w != Workload::Create && (bench.shared.pool.lock().len() as u64) < plan.pool {
            let missing = plan.pool - bench.shared.pool.lock().len() as u64;
            progress(&format!(
                "{}: {missing} sessions into the pool",
                bench.system.name()
            ));
            bench.fill_pool(missing).await?;
        }
        for &c in &plan.clients {
            let perf = match profile {
                Some((dir, pids)) if c == most => {
                    let name = format!("{}-{}", bench.system.name(), w.name());
                    Some(crate::profile::Perf::start(dir, &name, pids)?)
                }
                _ => None,
            };
            let row = bench.closed(w, c, plan).await?;
            if let Some(p) = perf {
                progress(&format!("flamegraph {}", p.finish()?.display()));
            }
            progress(&format!(
                "{} {:?} {c} clients: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                bench.system.name(),
                w,
                row.point.throughput,
                row.point.p50_ms,
                row.point.p99_ms,
                row.point.errors
            ));
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Progress on stderr (the report goes to files and stdout).
pub(crate) fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}
