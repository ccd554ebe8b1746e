//! An in-process single-node sessync for HTTP tests: a real RocksDB directory, a real socket on
//! loopback, the real router. (Multi-node tests use the process harness in chaos-tests/.)

#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sessync_config::{hash_api_key, NodeConfig};
use tempfile::TempDir;

pub const APP_KEY: &str = "test-app-key-0123456789";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
/// The configured peer site: its nodes are at a closed port, so deliveries to it stay queued.
pub const PEER: &str = "site-p";
/// What `site-p` signs its requests to this node with.
pub const PEER_SECRET: &str = "the-peer-signs-with-this-0123456789";
/// Most entries queued for `site-p`.
pub const PEER_OUTBOX_LIMIT: u32 = 3;

pub struct TestNode {
    pub url: String,
    http: reqwest::Client,
    _dir: TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestNode {
    /// Starts and initialises a one-node cluster with `policy` lines under `[policy]`.
    pub async fn start(policy: &str) -> TestNode {
        let dir = TempDir::new().unwrap();
        std::fs::write(
            dir.path().join("secret"),
            "an-http-test-cluster-secret-0123456789",
        )
        .unwrap();
        std::fs::write(dir.path().join("peer-recv"), PEER_SECRET).unwrap();
        std::fs::write(
            dir.path().join("peer-send"),
            "we-sign-with-this-0123456789ab",
        )
        .unwrap();
        let port = free_port();
        let closed = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let toml = format!(
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
urls = ["http://127.0.0.1:{closed}"]
send_secret_file = "peer-send"
receive_secret_file = "peer-recv"

[raft]
heartbeat_interval = "50ms"
election_timeout_min = "150ms"
election_timeout_max = "300ms"
"#,
            app = hex::encode(hash_api_key(APP_KEY)),
            admin = hex::encode(hash_api_key(ADMIN_KEY)),
        );
        let config = NodeConfig::from_toml_str(&toml, dir.path(), &[]).expect("valid test config");
        tokio::spawn(sessync_node::node::run(config));
        let node = TestNode {
            url,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        node.wait_until(|| async { node.get_open("/healthz").await == StatusCode::OK })
            .await;
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

    async fn get_open(&self, path: &str) -> StatusCode {
        match self.http.get(format!("{}{path}", self.url)).send().await {
            Ok(r) => r.status(),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Polls `f` every 50 ms for up to 10 s.
    pub async fn wait_until<F, Fut>(&self, f: F)
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
    pub async fn call(
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
    pub async fn raw(
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
    pub async fn peer_post(
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
    pub async fn open_stream(&self, path: &str, key: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a session for `user`; returns (session_id, token).
    pub async fn login(&self, user: &str) -> (String, String) {
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

    pub async fn validate(&self, token: &str) -> Value {
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
pub fn assert_error(
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
