//! The two systems under the same load: each operation of a session store, done the way an
//! application would do it on sessync (its Rust client) and on etcd (its native gRPC client,
//! a session as one key with a lease).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use etcd_client::{GetOptions, PutOptions};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sessync_client::Client;
use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
use sessync_proto::{SessionId, UserId};

/// A session replicated writes are skipped for if it was touched this recently: sessync's
/// default `touch_interval`, which the etcd side applies in its client as an app would.
const TOUCH_INTERVAL: Duration = Duration::from_secs(2);

/// What an etcd session key holds: the record sessync keeps, as JSON.
#[derive(Serialize, Deserialize)]
struct EtcdRecord {
    session_id: String,
    user_id: String,
    token_sha256: String,
    device: String,
    created_at: u64,
    last_seen_at: u64,
    expires_at: u64,
}

/// A live session the load can validate or end: sessync's id and token, or etcd's key.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    key: String,
    token: String,
}

/// How a validate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// sessync `consistency: linearizable`; etcd's default (linearizable) get.
    Linearizable,
    /// sessync `consistency: local`; etcd's serializable get.
    Local,
}

/// Which system a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum System {
    Sessync,
    Etcd,
}

impl System {
    pub(crate) fn name(self) -> &'static str {
        match self {
            System::Sessync => "sessync",
            System::Etcd => "etcd",
        }
    }
}

/// One simulated application client (a few hundred at most: their size does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Conn {
    Sessync(Client),
    /// The client and the lease its puts carry (one per client, granted at connect: a lease
    /// per session would cost etcd a second write per login).
    Etcd(etcd_client::Client, i64),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Conn {
    /// A client of sessync over every node (writes go to the leader, reads round-robin).
    pub(crate) fn sessync(urls: Vec<String>, key: &str) -> anyhow::Result<Conn> {
        let c = Client::builder(urls, key)
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Conn::Sessync(c))
    }

    /// A client of etcd over every member, with a lease of sessync's absolute lifetime.
    pub(crate) async fn etcd(endpoints: Vec<String>) -> anyhow::Result<Conn> {
        let mut c = etcd_client::Client::connect(endpoints, None).await?;
        let lease = c.lease_grant(8 * 3600, None).await?.id();
        Ok(Conn::Etcd(c, lease))
    }

    /// Logs user `n` in; returns the session.
    pub(crate) async fn create(&self, n: u64) -> anyhow::Result<Live> {
        match self {
            Conn::Sessync(c) => {
                let req = CreateSessionRequest {
                    user_id: UserId::parse_field(&format!("user-{n}"), "user_id")
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?,
                    device: Default::default(),
                    origin: Some("bench".into()),
                    idempotency_key: None,
                };
                let r = c.create_session(&req).await?;
                Ok(Live {
                    key: r.session.session_id.to_string(),
                    token: r.token,
                })
            }
            Conn::Etcd(c, lease) => {
                let (id, token) = {
                    let mut rng = rand::thread_rng();
                    (rng.gen::<u128>(), rng.gen::<u128>())
                };
                let id = format!("s_{id:032x}");
                let now = now_ms();
                let rec = EtcdRecord {
                    session_id: id.clone(),
                    user_id: format!("user-{n}"),
                    token_sha256: format!("{token:064x}"),
                    device: "bench".into(),
                    created_at: now,
                    last_seen_at: now,
                    expires_at: now + 8 * 3600 * 1000,
                };
                let key = format!("/sessions/{id}");
                c.clone()
                    .put(
                        key.clone(),
                        serde_json::to_vec(&rec)?,
                        Some(PutOptions::new().with_lease(*lease)),
                    )
                    .await?;
                Ok(Live {
                    key,
                    token: String::new(),
                })
            }
        }
    }

    /// Checks a session; with `touch`, marks it used (a replicated write at most once per
    /// touch interval). Returns whether it was valid.
    pub(crate) async fn validate(&self, s: &Live, read: Read, touch: bool) -> anyhow::Result<bool> {
        match self {
            Conn::Sessync(c) => {
                let req = ValidateRequest {
                    token: s.token.clone(),
                    touch,
                    consistency: match read {
                        Read::Linearizable => Consistency::Linearizable,
                        Read::Local => Consistency::Local,
                    },
                };
                Ok(c.validate(&req).await?.valid)
            }
            Conn::Etcd(c, lease) => {
                let opts = match read {
                    Read::Linearizable => None,
                    Read::Local => Some(GetOptions::new().with_serializable()),
                };
                let r = c.clone().get(s.key.as_str(), opts).await?;
                let Some(kv) = r.kvs().first() else {
                    return Ok(false);
                };
                let mut rec: EtcdRecord =
                    serde_json::from_slice(kv.value()).context("etcd record")?;
                let now = now_ms();
                if touch
                    && now.saturating_sub(rec.last_seen_at) >= TOUCH_INTERVAL.as_millis() as u64
                {
                    rec.last_seen_at = now;
                    c.clone()
                        .put(
                            s.key.as_str(),
                            serde_json::to_vec(&rec)?,
                            Some(PutOptions::new().with_lease(*lease)),
                        )
                        .await?;
                }
                Ok(true)
            }
        }
    }

    /// Logs the session out.
    pub(crate) async fn end(&self, s: &Live) -> anyhow::Result<()> {
        match self {
            Conn::Sessync(c) => {
                let id = SessionId::parse_field(&s.key, "session_id")
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                match c.end_session(&id).await {
                    Ok(_) => Ok(()),
                    // Ended already (by a concurrent end of the same pick): an answer.
                    Err(e) if e.status() == Some(404) || e.status() == Some(410) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Conn::Etcd(c, _) => {
                c.clone().delete(s.key.as_str(), None).await?;
                Ok(())
            }
        }
    }
}

/// Makes `n` sessions with `clients` concurrent clients, failing if any create fails.
pub(crate) async fn preload(conns: &[Conn], n: u64, first: u64) -> anyhow::Result<Vec<Live>> {
    let per = n.div_ceil(conns.len() as u64);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, c) in conns.iter().enumerate() {
        let c = c.clone();
        let from = first + i as u64 * per;
        let to = (first + n).min(from + per);
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
            for k in from..to {
                out.push(c.create(k).await?);
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Vec::with_capacity(n as usize);
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    if all.len() as u64 != n {
        bail!("preload made {} sessions, not {n}", all.len());
    }
    Ok(all)
}
