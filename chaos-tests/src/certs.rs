//! Certificates made at run time for TLS tests (rcgen): one CA per test, and node or client
//! certificates it signs, valid for `localhost` and `127.0.0.1` and for both server and
//! client use (a node is a TLS server to its callers and a client of its peers).

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

/// A certificate authority of a test; cheap to clone (clones share the CA).
#[derive(Clone)]
pub struct TestCa(Arc<Ca>);

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa(..)")
    }
}

/// A certificate and its key, both PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PKCS#8 PEM).
    pub key_pem: String,
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<TestCa> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key)?;
        Ok(TestCa(Arc::new(Ca { cert, key })))
    }

    /// The CA certificate (PEM), for trust stores and `client_ca_file`.
    pub fn cert_pem(&self) -> String {
        self.0.cert.pem()
    }

    /// A certificate for `common_name`, valid for `localhost` and `127.0.0.1`, signed by this CA.
    pub fn issue(&self, common_name: &str) -> anyhow::Result<Issued> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.0.cert, &self.0.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
