//! TLS from `[tls]` (rustls, ring): the server side, which the listener wraps every connection
//! in, and the HTTP client every node-to-node and site-to-site call goes through (with
//! `ca_file`, trusting only its CAs, not the public web roots; showing this node's certificate
//! to servers that ask for one; following no redirect).
//!
//! With `client_ca_file` the server asks every caller for a certificate of those CAs but lets
//! one without a certificate connect (apps, `sessyncctl`, probes): a certificate that is shown
//! must verify, or the handshake fails. Whether a connection showed one is carried into each of
//! its requests as [`ClientCert`]; the node-to-node and peer-site routes refuse a request whose
//! connection showed none (`api`).
//!
//! Without `[tls]` the listener serves plain HTTP and the client still speaks HTTPS to URLs
//! that say so (trusting the public roots).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use sessync_config::TlsConfig;
use tokio_rustls::TlsAcceptor;

/// How long connecting to another node may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long an idle pooled connection to another node is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Why the TLS settings could not be built; each names the config key at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.cert_file: no certificate in the file ({0})")]
    Cert(String),
    #[error("tls.key_file: no usable private key in the file ({0})")]
    Key(String),
    #[error("tls.client_ca_file: {0}")]
    ClientCa(String),
    #[error("tls.ca_file: {0}")]
    Ca(String),
    #[error("tls: the certificate and key do not make a server identity: {0}")]
    Server(String),
    #[error("tls: the HTTP client could not be built: {0}")]
    Client(String),
}

/// The listener's TLS acceptor, if `[tls]` is set, and the client for calls to other nodes
/// and sites.
pub(crate) struct Tls {
    pub(crate) acceptor: Option<Acceptor>,
    pub(crate) client: reqwest::Client,
}

/// The listener's side of TLS, and whether it asks callers for client certificates.
#[derive(Clone)]
pub(crate) struct Acceptor {
    pub(crate) inner: TlsAcceptor,
    /// `client_ca_file` is set.
    pub(crate) asks_client_cert: bool,
}

/// What a connection's caller proved about itself in the TLS handshake; the listener puts it in
/// every request of the connection (a request extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientCert {
    /// No client certificate is asked for (no `[tls]`, or no `client_ca_file`): nothing is
    /// required of anyone.
    NotAsked,
    /// Asked for, and none was shown.
    Missing,
    /// Shown, and verified against `client_ca_file`.
    Verified,
}

impl Tls {
    pub(crate) fn new(config: Option<&TlsConfig>) -> Result<Tls, TlsError> {
        let acceptor = config
            .map(|c| {
                server_config(c).map(|s| Acceptor {
                    inner: TlsAcceptor::from(Arc::new(s)),
                    asks_client_cert: c.client_ca_pem.is_some(),
                })
            })
            .transpose()?;
        Ok(Tls {
            acceptor,
            client: client(config)?,
        })
    }
}

fn certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("the file holds no CERTIFICATE block".to_owned());
    }
    Ok(certs)
}

fn roots(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certs(pem)? {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    Ok(roots)
}

fn server_config(c: &TlsConfig) -> Result<ServerConfig, TlsError> {
    let chain = certs(&c.cert_pem).map_err(TlsError::Cert)?;
    let key = PrivateKeyDer::from_pem_slice(c.key_pem.expose())
        .map_err(|e| TlsError::Key(e.to_string()))?;
    let builder = ServerConfig::builder();
    let builder = match &c.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let roots = roots(pem).map_err(TlsError::ClientCa)?;
            // A caller without a certificate connects; the routes for peers refuse it.
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Server(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The HTTP client for calls to other nodes and sites: short connect timeout, pooled, no
/// redirect followed (an answer is the peer's own or none: a redirect would send the signed
/// request elsewhere), and with `[tls]` this node's certificate shown and, with `ca_file`, the
/// CAs of that file trusted and no others (a certificate a public CA issued for a node's name
/// is not a node).
fn client(config: Option<&TlsConfig>) -> Result<reqwest::Client, TlsError> {
    client_builder(config)?
        .build()
        .map_err(|e| TlsError::Client(e.to_string()))
}

/// The same client, but connecting to `addr` for every request to `host` (whose name the
/// server's certificate is still checked against): for calls to one address of a DNS name.
pub(crate) fn client_resolving(
    config: Option<&TlsConfig>,
    host: &str,
    addr: std::net::SocketAddr,
) -> Result<reqwest::Client, TlsError> {
    client_builder(config)?
        .resolve(host, addr)
        .build()
        .map_err(|e| TlsError::Client(e.to_string()))
}

fn client_builder(config: Option<&TlsConfig>) -> Result<reqwest::ClientBuilder, TlsError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE);
    if let Some(c) = config {
        if let Some(pem) = &c.ca_pem {
            b = b.tls_built_in_root_certs(false);
            let bundle = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TlsError::Ca(e.to_string()))?;
            if bundle.is_empty() {
                return Err(TlsError::Ca(
                    "the file holds no CERTIFICATE block".to_owned(),
                ));
            }
            for cert in bundle {
                b = b.add_root_certificate(cert);
            }
        }
        let mut identity = c.cert_pem.clone();
        identity.push(b'\n');
        identity.extend_from_slice(c.key_pem.expose());
        let identity =
            reqwest::Identity::from_pem(&identity).map_err(|e| TlsError::Key(e.to_string()))?;
        b = b.identity(identity);
    }
    Ok(b)
}
