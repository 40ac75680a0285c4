//! TLS for wss://: loading certificates and keys (PEM files or memory;
//! PKCS#8, PKCS#1, SEC1 and encrypted PKCS#8), checking them as early as
//! possible, and building the immutable rustls configuration that new
//! handshakes use. A [`TlsBuilder`] gathers material; [`TlsBuilder::build`]
//! turns it into a cheap-to-clone [`Tls`], which a live server can swap
//! (certificate renewal) without touching open connections.
use crate::Error;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;
use tokio_rustls::rustls::{self, crypto::CryptoProvider, server::WebPkiClientVerifier, sign::CertifiedKey};
use x509_cert::der::Decode;

fn tls_err(m: String) -> Error {
    Error::Tls(m)
}

fn read_file(path: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| tls_err(format!("cannot read '{path}': {e}")))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses every certificate in `pem`; at least one must be there.
fn parse_certs(pem: &[u8], source: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(format!("{source}: malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(format!("{source}: no certificate found (expected -----BEGIN CERTIFICATE-----)")));
    }
    for (i, c) in certs.iter().enumerate() {
        x509_cert::Certificate::from_der(c)
            .map_err(|e| tls_err(format!("{source}: certificate #{} is not valid X.509: {e}", i + 1)))?;
    }
    Ok(certs)
}

/// Parses a private key, decrypting an encrypted PKCS#8 one with `password`.
fn parse_key(pem: &[u8], password: Option<&str>, source: &str) -> Result<PrivateKeyDer<'static>, Error> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(tls_err(format!(
            "{source}: legacy OpenSSL-encrypted PEM is not supported; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
        )));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let Some(password) = password else {
            return Err(tls_err(format!("{source}: the key is encrypted and no password was given")));
        };
        let (_, doc) = pkcs8::der::SecretDocument::from_pem(&text)
            .map_err(|e| tls_err(format!("{source}: malformed encrypted key: {e}")))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| tls_err(format!("{source}: malformed encrypted key: {e}")))?;
        check_kdf_cost(&info.encryption_algorithm, source)?;
        let plain = info.decrypt(password).map_err(|_| {
            tls_err(format!("{source}: wrong password for the encrypted key (or an unsupported cipher)"))
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec())));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => tls_err(format!(
            "{source}: no private key found (expected PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY)"
        )),
        e => tls_err(format!("{source}: malformed private key: {e}")),
    })
}

/// Most PBKDF2 iterations an encrypted key may ask for (OpenSSL uses 2,048;
/// RFC 8018 calls 10,000,000 fit for especially critical keys).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Most memory (128 * r * N bytes) an scrypt-encrypted key may ask for
/// (OpenSSL's default is 16 MiB), and most work (that times p).
const MAX_SCRYPT_MEMORY: u64 = 256 << 20;
const MAX_SCRYPT_WORK: u64 = 1 << 30;

/// Refuses an encrypted key whose key derivation would hang the caller or
/// exhaust its memory (the parameters are in the file: 2^32 PBKDF2 rounds,
/// or scrypt asking for terabytes, which would abort the process).
fn check_kdf_cost(scheme: &pkcs8::pkcs5::EncryptionScheme<'_>, source: &str) -> Result<(), Error> {
    use pkcs8::pkcs5::{pbes2::Kdf, EncryptionScheme};
    let EncryptionScheme::Pbes2(params) = scheme else { return Ok(()) };
    let redo = "re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`";
    match &params.kdf {
        Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => Err(tls_err(format!(
            "{source}: the encrypted key asks for {} PBKDF2 iterations, more than {MAX_PBKDF2_ITERATIONS}; {redo}",
            p.iteration_count
        ))),
        Kdf::Scrypt(p) => {
            let memory = 128u64.saturating_mul(p.block_size as u64).saturating_mul(p.cost_parameter);
            if memory > MAX_SCRYPT_MEMORY || memory.saturating_mul(p.parallelization as u64) > MAX_SCRYPT_WORK {
                return Err(tls_err(format!(
                    "{source}: the encrypted key's scrypt parameters (N={}, r={}, p={}) need more than {} MiB or too \
                     much work to decrypt; {redo}",
                    p.cost_parameter,
                    p.block_size,
                    p.parallelization,
                    MAX_SCRYPT_MEMORY >> 20
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Certificate, key and optional client CA, gathered and checked piece by
/// piece; each setter reports what it can know (file, PEM, password).
#[derive(Default, Clone)]
pub struct TlsBuilder {
    certs: Vec<CertificateDer<'static>>,
    cert_source: String,
    key: Option<Arc<PrivateKeyDer<'static>>>,
    key_source: String,
    ca: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for TlsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsBuilder")
            .field("cert", &self.cert_source)
            .field("key", &self.key_source)
            .field("ca_certs", &self.ca.len())
            .finish()
    }
}

impl TlsBuilder {
    /// An empty builder.
    pub fn new() -> TlsBuilder {
        TlsBuilder::default()
    }

    /// The certificate chain (leaf first) from a PEM file.
    pub fn cert_file(&mut self, path: &str) -> Result<(), Error> {
        self.certs = parse_certs(&read_file(path)?, &format!("certificate file '{path}'"))?;
        self.cert_source = path.to_string();
        Ok(())
    }

    /// The certificate chain (leaf first) from PEM in memory.
    pub fn cert_pem(&mut self, pem: &[u8]) -> Result<(), Error> {
        self.certs = parse_certs(pem, "certificate PEM")?;
        self.cert_source = "PEM in memory".into();
        Ok(())
    }

    /// The private key from a PEM file; `password` decrypts an encrypted
    /// PKCS#8 key. Unsupported key types are refused here.
    pub fn key_file(&mut self, path: &str, password: Option<&str>) -> Result<(), Error> {
        let source = format!("key file '{path}'");
        self.set_key(parse_key(&read_file(path)?, password, &source)?, source)
    }

    /// The private key from PEM in memory (see [`TlsBuilder::key_file`]).
    pub fn key_pem(&mut self, pem: &[u8], password: Option<&str>) -> Result<(), Error> {
        let source = "key PEM".to_string();
        self.set_key(parse_key(pem, password, &source)?, source)
    }

    fn set_key(&mut self, key: PrivateKeyDer<'static>, source: String) -> Result<(), Error> {
        provider().key_provider.load_private_key(key.clone_key()).map_err(|e| {
            tls_err(format!("{source}: unsupported key type ({e}); use RSA (2048+ bits), ECDSA P-256/P-384 or Ed25519"))
        })?;
        self.key = Some(Arc::new(key));
        self.key_source = source;
        Ok(())
    }

    /// CA certificates from a PEM file: clients must then present a
    /// certificate that chains to one of them (mutual TLS).
    pub fn ca_file(&mut self, path: &str) -> Result<(), Error> {
        self.ca = parse_certs(&read_file(path)?, &format!("CA file '{path}'"))?;
        Ok(())
    }

    /// CA certificates from PEM in memory (see [`TlsBuilder::ca_file`]).
    pub fn ca_pem(&mut self, pem: &[u8]) -> Result<(), Error> {
        self.ca = parse_certs(pem, "CA PEM")?;
        Ok(())
    }

    /// Checks the whole (key matches certificate, CA usable) and builds the
    /// configuration handshakes will use.
    pub fn build(&self) -> Result<Tls, Error> {
        if self.certs.is_empty() {
            return Err(tls_err("no certificate was set".into()));
        }
        let Some(key) = &self.key else {
            return Err(tls_err("no private key was set".into()));
        };
        let provider = provider();
        let signing = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| tls_err(format!("{}: unsupported key type ({e})", self.key_source)))?;
        let certified = CertifiedKey::new(self.certs.clone(), signing);
        match certified.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(_) => {
                return Err(tls_err(format!(
                    "{} does not match the certificate from {}",
                    self.key_source, self.cert_source
                )))
            }
        }
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(e.to_string()))?;
        let builder = if self.ca.is_empty() {
            builder.with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for c in &self.ca {
                roots.add(c.clone()).map_err(|e| tls_err(format!("CA certificate unusable: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_err(format!("CA certificates unusable: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        };
        let mut config = builder
            .with_single_cert(self.certs.clone(), key.clone_key())
            .map_err(|e| tls_err(format!("certificate and key rejected: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // After a TLS 1.3 handshake our own record layer takes over
        // (src/tls13_records.rs): it needs the keys and traffic secrets.
        config.enable_secret_extraction = true;
        config.key_log = Arc::new(crate::tls13_records::TrafficSecretCapture);
        Ok(Tls { config: Arc::new(config), validity_warning: validity_warning(&self.certs[0], &self.cert_source) })
    }
}

/// A warning when the leaf certificate is expired or not yet valid: rustls
/// serves it anyway, and clients will refuse it.
fn validity_warning(leaf: &CertificateDer<'_>, source: &str) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(leaf).ok()?;
    let v = &cert.tbs_certificate.validity;
    let now = SystemTime::now();
    if now > v.not_after.to_system_time() {
        Some(format!("the certificate from {source} expired on {}; clients will refuse it", v.not_after))
    } else if now < v.not_before.to_system_time() {
        Some(format!("the certificate from {source} is not valid before {}; clients will refuse it", v.not_before))
    } else {
        None
    }
}

/// A built TLS configuration: immutable, cheap to clone.
#[derive(Clone)]
pub struct Tls {
    pub(crate) config: Arc<rustls::ServerConfig>,
    pub(crate) validity_warning: Option<String>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls { .. }")
    }
}

/// The subject of the client's certificate (RFC 4514, e.g. "CN=alice,O=Org").
pub(crate) fn client_subject(conn: &rustls::CommonState) -> Option<String> {
    let der = conn.peer_certificates()?.first()?;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(cert.tbs_certificate.subject.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkcs8::der::{pem::LineEnding, EncodePem};
    use pkcs8::pkcs5::pbes2::{self, Kdf, Pbkdf2Params, Pbkdf2Prf, ScryptParams};

    /// An encrypted key PEM whose derivation has `kdf`'s cost (the data is
    /// junk: a key that is refused must be refused before decrypting).
    fn encrypted_key(kdf: Kdf<'_>) -> String {
        let iv = [7u8; 16];
        let scheme = pkcs8::pkcs5::EncryptionScheme::Pbes2(pbes2::Parameters {
            kdf,
            encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
        });
        let info = pkcs8::EncryptedPrivateKeyInfo { encryption_algorithm: scheme, encrypted_data: &[0u8; 48] };
        info.to_pem(LineEnding::LF).unwrap()
    }

    /// Found by the ffi_tls_pem fuzz target: a key asking for 2^32 - 1
    /// PBKDF2 rounds hung ws_tls_config_set_key_pem, and one asking for
    /// scrypt N = 2^40 aborted the process on a 1 TiB allocation.
    #[test]
    fn refuses_encrypted_keys_whose_derivation_would_hang_or_abort() {
        let salt = [1u8; 8];
        let pbkdf2 = |iteration_count| {
            Kdf::Pbkdf2(Pbkdf2Params { salt: &salt, iteration_count, key_length: None, prf: Pbkdf2Prf::HmacWithSha256 })
        };
        let scrypt = |cost_parameter, parallelization| {
            Kdf::Scrypt(ScryptParams { salt: &salt, cost_parameter, block_size: 8, parallelization, key_length: None })
        };
        for (kdf, what) in [
            (pbkdf2(u32::MAX), "PBKDF2 iterations"),
            (scrypt(1 << 40, 1), "scrypt parameters"),
            (scrypt(1 << 18, 64), "scrypt parameters"),
        ] {
            let pem = encrypted_key(kdf);
            let err = parse_key(pem.as_bytes(), Some("secret"), "key PEM").unwrap_err().to_string();
            assert!(err.contains(what) && err.contains("openssl pkcs8"), "{err}");
        }
        // Costs a real tool uses pass the check and fail only at the (junk) data.
        for kdf in [pbkdf2(2048), pbkdf2(100_000), scrypt(1 << 14, 1)] {
            let pem = encrypted_key(kdf);
            let err = parse_key(pem.as_bytes(), Some("secret"), "key PEM").unwrap_err().to_string();
            assert!(err.contains("wrong password"), "{err}");
        }
    }
}
