//! An in-process single-node sessync for HTTP tests: a real RocksDB directory, a real socket on
//! loopback (bound to port 0), the real router, stopped like the binary stops it.
//! (Multi-node tests use the process harness in chaos-tests/.)

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sessync_chaos_tests::TestCa;
use sessync_config::{hash_api_key, NodeConfig};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) const APP_KEY: &str = "test-app-key-0123456789";
pub(crate) const ADMIN_KEY: &str = "test-admin-key-0123456789";
/// The configured peer site: its nodes are at a closed port, so deliveries to it stay queued.
pub(crate) const PEER: &str = "site-p";
/// What `site-p` signs its requests to this node with.
pub(crate) const PEER_SECRET: &str = "the-peer-signs-with-this-0123456789";
/// What this node signs its requests to `site-p` with (and `site-p` its answers to them).
pub(crate) const PEER_SEND_SECRET: &str = "we-sign-with-this-0123456789ab";
/// Most entries queued for `site-p`.
pub(crate) const PEER_OUTBOX_LIMIT: u32 = 3;

pub(crate) struct TestNode {
    pub url: String,
    http: reqwest::Client,
    /// The node's data and secrets (taken back by [`TestNode::stop`]).
    dir: Option<TempDir>,
    /// Completing this stops the node.
    stop: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<Result<(), sessync_node::NodeError>>>,
    /// Holds the port the unreachable peer is configured at: bound, never listening, so
    /// connections to it are refused and no other process can take it.
    _closed: TcpSocket,
}

/// A node a test did not stop itself is told to stop when the test lets go of it.
impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A fresh directory holding the node's secrets.
fn with_secrets() -> TempDir {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("secret"), CLUSTER_SECRET).unwrap();
    std::fs::write(dir.path().join("peer-recv"), PEER_SECRET).unwrap();
    std::fs::write(dir.path().join("peer-send"), PEER_SEND_SECRET).unwrap();
    dir
}

/// A port on loopback that refuses connections for as long as the socket lives.
fn closed_port() -> (TcpSocket, u16) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// TLS for a test node: its CA, and whether callers must show a certificate it signed.
pub(crate) struct TestTls {
    pub ca: TestCa,
    pub require_client_cert: bool,
}

impl TestTls {
    pub(crate) fn new(require_client_cert: bool) -> TestTls {
        TestTls {
            ca: TestCa::new("sessync http test CA").unwrap(),
            require_client_cert,
        }
    }

    /// Writes the node's certificate, key and CA into `dir`; the `[tls]` section naming them.
    fn write(&self, dir: &std::path::Path) -> String {
        let node = self.ca.issue("node-1").unwrap();
        std::fs::write(dir.join("node.crt"), &node.cert_pem).unwrap();
        std::fs::write(dir.join("node.key"), &node.key_pem).unwrap();
        std::fs::write(dir.join("ca.crt"), self.ca.cert_pem()).unwrap();
        let client_ca = if self.require_client_cert {
            "client_ca_file = \"ca.crt\"\n"
        } else {
            ""
        };
        format!("[tls]\ncert_file = \"node.crt\"\nkey_file = \"node.key\"\nca_file = \"ca.crt\"\n{client_ca}")
    }

    /// A client that trusts the CA and, if `with_cert`, shows a certificate it signed.
    pub(crate) fn client(&self, with_cert: bool) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.ca.cert_pem().as_bytes()).unwrap(),
            );
        if with_cert {
            let me = self.ca.issue("test-client").unwrap();
            let pem = format!("{}\n{}", me.cert_pem, me.key_pem);
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }
}

/// The node's config: one node of site `test` listening at `port`, with `site-p` as a peer at
/// `peer_url`, `policy` lines under `[policy]` and `extra` sections at the end.
fn config_toml(port: u16, scheme: &str, peer_url: &str, policy: &str, extra: &str) -> String {
    let url = format!("{scheme}://127.0.0.1:{port}");
    format!(
        r#"
node_id = 1
site = "test"
listen = "127.0.0.1:{port}"
advertise_url = "{url}"
data_dir = "data"
cluster_secret_file = "secret"

[policy]
{policy}

[[api_keys]]
name = "app"
sha256 = "{app}"
role = "app"

[[api_keys]]
name = "admin"
sha256 = "{admin}"
role = "admin"

[federation]
outbox_limit = {PEER_OUTBOX_LIMIT}

[[federation.peers]]
name = "{PEER}"
urls = ["{peer_url}"]
send_secret_file = "peer-send"
receive_secret_file = "peer-recv"

[raft]
heartbeat_interval = "50ms"
election_timeout_min = "150ms"
election_timeout_max = "300ms"

{extra}
"#,
        app = hex::encode(hash_api_key(APP_KEY)),
        admin = hex::encode(hash_api_key(ADMIN_KEY)),
    )
}

impl TestNode {
    /// Starts and initialises a one-node cluster with `policy` lines under `[policy]`; its peer
    /// site refuses connections.
    pub(crate) async fn start(policy: &str) -> TestNode {
        Self::start_with(policy, None, "").await
    }

    /// Like [`TestNode::start`], with the peer site's one node at `peer_url` if given and
    /// `extra` config sections (`[limits]`, ...).
    pub(crate) async fn start_with(policy: &str, peer_url: Option<&str>, extra: &str) -> TestNode {
        Self::start_full(policy, peer_url, extra, None).await
    }

    /// Like [`TestNode::start`], serving HTTPS with a certificate of `tls`'s CA; the node's
    /// own client trusts the CA and shows a client certificate when `tls` requires one.
    pub(crate) async fn start_tls(tls: &TestTls) -> TestNode {
        Self::start_full("", None, "", Some(tls)).await
    }

    async fn start_full(
        policy: &str,
        peer_url: Option<&str>,
        extra: &str,
        tls: Option<&TestTls>,
    ) -> TestNode {
        let dir = with_secrets();
        let node = Self::run_in(dir, policy, peer_url, extra, tls, &[]).await;
        let (s, body) = node
            .call(
                Method::POST,
                "/cluster/init",
                ADMIN_KEY,
                Some(json!({"members": {"1": node.url}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "init: {body}");
        node.wait_until(|| async {
            let (s, body) = node.call(Method::GET, "/v1/config", ADMIN_KEY, None).await;
            s == StatusCode::OK && !body["policy"].is_null()
        })
        .await;
        node
    }

    /// A node that is not initialised (no members yet): the test makes its cluster with
    /// `/cluster/init`.
    pub(crate) async fn start_uninitialised() -> TestNode {
        Self::run_in(with_secrets(), "", None, "", None, &[]).await
    }

    /// Runs a node on the data in `dir` (secrets there already), on a port of its own (the
    /// listener is bound to port 0 first), and waits until it answers.
    async fn run_in(
        dir: TempDir,
        policy: &str,
        peer_url: Option<&str>,
        extra: &str,
        tls: Option<&TestTls>,
        env: &[(String, String)],
    ) -> TestNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (closed_socket, closed) = closed_port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let closed_url = format!("{scheme}://127.0.0.1:{closed}");
        let extra = match tls {
            Some(t) => format!("{extra}\n{}", t.write(dir.path())),
            None => extra.to_owned(),
        };
        let toml = config_toml(
            port,
            scheme,
            peer_url.unwrap_or(&closed_url),
            policy,
            &extra,
        );
        let config = NodeConfig::from_toml_str(&toml, dir.path(), env).expect("valid test config");
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(sessync_node::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let http = match tls {
            Some(t) => t.client(t.require_client_cert),
            None => reqwest::Client::new(),
        };
        let mut node = TestNode {
            url: format!("{scheme}://127.0.0.1:{port}"),
            http,
            dir: Some(dir),
            stop: Some(stop),
            running: Some(running),
            _closed: closed_socket,
        };
        for _ in 0..200 {
            if node.get_open("/healthz").await == StatusCode::OK {
                return node;
            }
            if node.running.as_ref().is_some_and(|r| r.is_finished()) {
                let ended = node.running.take().unwrap().await;
                panic!("the node stopped before it answered: {ended:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the node did not answer /healthz within 10 s")
    }

    /// Stops the node and waits until it has stopped: every task ended and its database
    /// closed. Returns its data directory.
    pub(crate) async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let running = self.running.take().expect("the node runs");
        let outcome = tokio::time::timeout(Duration::from_secs(20), running)
            .await
            .expect("the node stops within 20 s")
            .expect("the node's task did not panic");
        outcome.expect("the node stopped without an error");
        self.dir.take().expect("the data directory")
    }

    /// Starts a stopped node again on its data (on another port), with `policy`.
    pub(crate) async fn restart(dir: TempDir, policy: &str) -> TestNode {
        Self::run_in(dir, policy, None, "", None, &[]).await
    }

    /// Starts a stopped node again on its data with `SESSYNC_*` variables `env`.
    pub(crate) async fn restart_with_env(dir: TempDir, env: &[(&str, &str)]) -> TestNode {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::run_in(dir, "", None, "", None, &env).await
    }

    async fn get_open(&self, path: &str) -> StatusCode {
        match self.http.get(format!("{}{path}", self.url)).send().await {
            Ok(r) => r.status(),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Polls `f` every 50 ms for up to 10 s.
    pub(crate) async fn wait_until<F, Fut>(&self, f: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..200 {
            if f().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("condition not reached within 10 s");
    }

    /// Sends a JSON request with `key` (or none if empty) and returns status and JSON body.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let raw = body.map(|b| b.to_string().into_bytes());
        self.raw(method, path, key, raw).await
    }

    /// Like `call` with a raw body.
    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.url));
        if !key.is_empty() {
            rb = rb.bearer_auth(key);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let resp = rb.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Posts `body` to `path` with the given peer headers (name, value); status and JSON body.
    pub(crate) async fn peer_post(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        let resp = rb.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Opens a GET whose body is read as it arrives (for the event stream).
    pub(crate) async fn open_stream(&self, path: &str, key: &str) -> reqwest::Response {
        self.resume_stream(path, key, None).await
    }

    /// Opens an event stream, resuming after `last_event_id` when given.
    pub(crate) async fn resume_stream(
        &self,
        path: &str,
        key: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(key);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        req.send().await.expect("request sent")
    }

    /// Creates a session for `user`; returns (session_id, token).
    pub(crate) async fn login(&self, user: &str) -> (String, String) {
        let (s, b) = self
            .call(
                Method::POST,
                "/v1/sessions",
                APP_KEY,
                Some(json!({"user_id": user})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create: {b}");
        (
            b["session"]["session_id"].as_str().unwrap().to_owned(),
            b["token"].as_str().unwrap().to_owned(),
        )
    }

    pub(crate) async fn validate(&self, token: &str) -> Value {
        let (s, b) = self
            .call(
                Method::POST,
                "/v1/sessions/validate",
                APP_KEY,
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "validate: {b}");
        b
    }
}

/// Asserts an error answer: status, code, and (if given) the field named.
pub(crate) fn assert_error(
    status: StatusCode,
    body: &Value,
    want: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    assert_eq!(status, want, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    if let Some(f) = field {
        assert_eq!(body["error"]["field"], f, "body: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(f),
            "message names the field: {body}"
        );
    }
}

/// The cluster secret of every test node.
pub(crate) const CLUSTER_SECRET: &str = "an-http-test-cluster-secret-0123456789";
