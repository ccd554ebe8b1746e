//! The baseline: a 3-node etcd cluster (Debian's `etcd-server`) on loopback ports, each member
//! with its own data dir and etcd's default fsync on every commit, started as processes and
//! killed with the bench.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The etcd binary: `$SESSYNC_BENCH_ETCD`, else `etcd` on the PATH.
fn etcd_binary() -> PathBuf {
    std::env::var_os("SESSYNC_BENCH_ETCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

/// A running etcd cluster; its members are killed when it is dropped.
pub(crate) struct EtcdCluster {
    members: Vec<Member>,
}

struct Member {
    client_url: String,
    data_dir: PathBuf,
    child: Child,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdCluster {
    /// Starts `n` members under `dir` and waits until the cluster has a leader.
    pub(crate) async fn start(dir: &Path, n: usize) -> anyhow::Result<EtcdCluster> {
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{}=http://127.0.0.1:{peer}", i + 1))
            .collect();
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("e{}", i + 1);
            let data_dir = dir.join(&name);
            std::fs::create_dir_all(&data_dir)?;
            let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let child = Command::new(etcd_binary())
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "sessync-bench"])
                // Room for a few hundred thousand session records (the default is 2 GiB).
                .args(["--quota-backend-bytes", "8589934592"])
                .args(["--logger", "zap", "--log-level", "warn"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| {
                    format!(
                        "cannot start {} (Debian's etcd-server; scripts/setup.sh --bench installs it)",
                        etcd_binary().display()
                    )
                })?;
            members.push(Member {
                client_url,
                data_dir,
                child,
            });
        }
        let cluster = EtcdCluster { members };
        cluster.wait_leader(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// Every member's client URL.
    pub(crate) fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Every member's process id.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.members.iter().map(|m| m.child.id()).collect()
    }

    /// Every member's data dir.
    pub(crate) fn data_dirs(&self) -> Vec<PathBuf> {
        self.members.iter().map(|m| m.data_dir.clone()).collect()
    }

    async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let status = async {
                let mut c = etcd_client::Client::connect(self.endpoints(), None).await?;
                let s = c.status().await?;
                anyhow::Ok(s.leader() != 0)
            };
            if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(2), status).await {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!("etcd elected no leader within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.child.kill();
            let _ = m.child.wait();
        }
    }
}
