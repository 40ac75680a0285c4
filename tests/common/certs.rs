//! Certificates made at test time by scripts/make-certs.sh (openssl),
//! never committed, and the TLS configurations the tests build from them.
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tokio_rustls::rustls;
use wsserver::{Error, Tls, TlsBuilder};

/// Names a directory of certificates made already: a test's child
/// process (tests/churn.rs) uses its parent's instead of making its own.
pub const CERTS_DIR_ENV: &str = "WSSERVER_TEST_CERTS_DIR";

/// The certificates, generated once per test run (or those named by
/// [`CERTS_DIR_ENV`]).
pub fn certs() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os(CERTS_DIR_ENV) {
            return PathBuf::from(dir);
        }
        let dir = std::env::temp_dir().join(format!("wsserver-tls-test-{}", std::process::id()));
        let ok = std::process::Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-certs.sh"))
            .arg(&dir)
            .status()
            .expect("run make-certs.sh")
            .success();
        assert!(ok, "make-certs.sh failed");
        dir
    })
}

/// The path of a generated file.
pub fn file(name: &str) -> String {
    certs().join(name).to_string_lossy().into_owned()
}

/// A server TLS configuration from the named files.
pub fn tls(cert: &str, key: &str, password: Option<&str>, ca: Option<&str>) -> Result<Tls, Error> {
    let mut b = TlsBuilder::new();
    b.cert_file(&file(cert))?;
    b.key_file(&file(key), password)?;
    if let Some(ca) = ca {
        b.ca_file(&file(ca))?;
    }
    b.build()
}

/// A client config trusting the test CA (ca.pem), with `identity` (a
/// certificate and key file) if given.
pub fn client_config(identity: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    client_config_trusting("ca.pem", identity)
}

/// A client config that trusts only the CA in `ca` (a file of the certificates).
pub fn client_config_trusting(ca: &str, identity: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    client_config_for(rustls::DEFAULT_VERSIONS, ca, identity)
}

/// As [`client_config_trusting`], offering only the TLS `versions`.
pub fn client_config_for(
    versions: &[&'static rustls::SupportedProtocolVersion],
    ca: &str,
    identity: Option<(&str, &str)>,
) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(file(ca)).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(file(cert)).unwrap().map(|c| c.unwrap()).collect();
            let key = PrivateKeyDer::from_pem_file(file(key)).unwrap();
            let signer = rustls::crypto::ring::default_provider().key_provider.load_private_key(key).unwrap();
            builder
                .with_client_cert_resolver(Arc::new(Identity(Arc::new(rustls::sign::CertifiedKey::new(chain, signer)))))
        }
    })
}

/// A TLS ClientHello, as a real client's first bytes.
pub fn client_hello() -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut c = rustls::ClientConnection::new(client_config(None), name).unwrap();
    let mut out = Vec::new();
    c.write_tls(&mut out).unwrap();
    out
}

/// A client identity sent as it is: rustls' own `with_client_auth_cert`
/// parses the certificate and will not even load a v1 one, which is the
/// point of one test.
#[derive(Debug)]
struct Identity(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Identity {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}
