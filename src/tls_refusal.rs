//! Why a TLS handshake failed, in words the person running the server can
//! act on: what was wrong (with the client's certificate, or with what the
//! client offered) and what to do about it, followed by rustls' own words.
//! Only the log line is built here; the verifier itself is rustls'
//! (webpki), unchanged — SECURITY.md says why nothing is relaxed.
use rustls::{AlertDescription, CertificateError, Error as TlsError};
use std::io;
use tokio_rustls::rustls;

/// What went wrong and what to do about it.
struct Refusal {
    what: String,
    todo: String,
}

fn refusal(what: impl Into<String>, todo: impl Into<String>) -> Option<Refusal> {
    Some(Refusal { what: what.into(), todo: todo.into() })
}

/// The text after "TLS handshake failed: " for handshake error `e` (as
/// tokio-rustls returns it): the reason, "what to do: ...", and in
/// parentheses the error as rustls states it.
pub(crate) fn explain(e: &io::Error) -> String {
    let tls = e.get_ref().and_then(|inner| inner.downcast_ref::<TlsError>());
    match tls.and_then(describe) {
        Some(r) => format!("{}; what to do: {} (rustls: {e})", r.what, r.todo),
        None => match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                format!("the client closed the connection during the TLS handshake ({e})")
            }
            _ => e.to_string(),
        },
    }
}

/// A date as RFC 3339 UTC, from seconds since the Unix epoch.
fn date(unix_secs: u64) -> String {
    x509_cert::der::DateTime::from_unix_duration(std::time::Duration::from_secs(unix_secs))
        .map(|d| d.to_string())
        .unwrap_or_else(|_| format!("{unix_secs} s after 1970"))
}

const V3_HINT: &str = "issue a version 3 certificate: write `basicConstraints=CA:FALSE` and \
    `extendedKeyUsage=clientAuth` into a file client.ext and sign with `openssl x509 -req -in client.csr \
    -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile client.ext -out client.pem` (with \
    `openssl ca`, name a section of those lines with `-extensions`); SECURITY.md says why version 1 is \
    not accepted";

const TRUST_HINT: &str = "issue the client certificate from a CA in the server's CA file \
    (ws_tls_config_set_ca_file / TlsBuilder::ca_file) or add the client's CA there; a client whose \
    certificate comes from an intermediate CA must send that intermediate too";

const REISSUE_EKU: &str = "reissue it with `extendedKeyUsage=clientAuth` in its -extfile (for a \
    certificate used both ways: `extendedKeyUsage=serverAuth,clientAuth`)";

const SERVER_CERT_HINT: &str = "the client must trust the CA that issued the server's certificate \
    (README: TLS, trusting the CA), connect by a name the certificate lists, and the certificate \
    must be within its validity dates; the client's own error message names which";

/// Plain words for the rustls errors a user can do something about.
fn describe(e: &TlsError) -> Option<Refusal> {
    match e {
        TlsError::InvalidCertificate(c) => certificate(c),
        TlsError::NoCertificatesPresented => refusal(
            "the client sent no certificate, and this server requires one (a client CA is set: mutual TLS)",
            "give the client a certificate and key issued by the CA in the server's CA file \
             (curl: --cert client.pem --key client.key; Python ssl: load_cert_chain), or set no CA \
             on the server if client certificates are not wanted",
        ),
        TlsError::AlertReceived(alert) => received_alert(*alert),
        TlsError::PeerIncompatible(p) => refusal(
            format!("the client offers no TLS version, cipher suite or key exchange this server supports ({p:?})"),
            "use a client that speaks TLS 1.3 or TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305 \
             (SECURITY.md lists the suites)",
        ),
        TlsError::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => refusal(
            "the client did not speak TLS: most likely plain ws:// or http:// sent to this wss:// port",
            "connect with a wss:// (https://) address",
        ),
        TlsError::InvalidMessage(_)
        | TlsError::InappropriateMessage { .. }
        | TlsError::InappropriateHandshakeMessage { .. } => refusal(
            "the client sent a malformed or unexpected TLS message",
            "nothing on the server side: a broken or hostile client",
        ),
        _ => None,
    }
}

/// The client aborted the handshake: it refused our certificate, or found
/// nothing in common with us.
fn received_alert(alert: AlertDescription) -> Option<Refusal> {
    use AlertDescription as A;
    match alert {
        A::CertificateExpired => refusal(
            "the client refused the server's certificate: it says the certificate has expired",
            "renew the server certificate (ws_server_reload_tls / ServerHandle::reload_tls applies it \
             without a restart), or check the client's clock",
        ),
        A::UnknownCA | A::BadCertificate | A::CertificateUnknown | A::UnsupportedCertificate | A::AccessDenied => {
            refusal(format!("the client refused the server's certificate (alert: {alert:?})"), SERVER_CERT_HINT)
        }
        A::ProtocolVersion | A::HandshakeFailure | A::InsufficientSecurity => refusal(
            format!("the client found no TLS version or cipher suite in common with the server (alert: {alert:?})"),
            "use a client that speaks TLS 1.3 or TLS 1.2 with ECDHE (SECURITY.md lists the suites)",
        ),
        _ => None,
    }
}

fn certificate(c: &CertificateError) -> Option<Refusal> {
    use CertificateError as C;
    match c {
        C::ExpiredContext { time, not_after } => refusal(
            format!(
                "the client's certificate expired on {} (the server's clock says {})",
                date(not_after.as_secs()),
                date(time.as_secs())
            ),
            "issue the client a new certificate, or correct the clock that is wrong",
        ),
        C::Expired => refusal("the client's certificate has expired", "issue the client a new certificate"),
        C::NotValidYetContext { time, not_before } => refusal(
            format!(
                "the client's certificate is not valid before {} (the server's clock says {})",
                date(not_before.as_secs()),
                date(time.as_secs())
            ),
            "check the clocks of the machine that issued it and of this server, or reissue it with a \
             start date in the past",
        ),
        C::NotValidYet => refusal(
            "the client's certificate is not valid yet",
            "check the clocks, or reissue it with a start date in the past",
        ),
        C::InvalidPurposeContext { presented, .. } => {
            let listed = presented.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
            refusal(
                format!(
                    "the client's certificate is not allowed for client authentication: its extended key \
                     usage lists {} but not clientAuth",
                    if listed.is_empty() { "nothing".to_string() } else { listed }
                ),
                REISSUE_EKU,
            )
        }
        C::InvalidPurpose => refusal(
            "the client's certificate is not allowed for client authentication (its extended key usage \
             lacks clientAuth)",
            REISSUE_EKU,
        ),
        C::UnknownIssuer => refusal("the client's certificate was not issued by a CA this server trusts", TRUST_HINT),
        C::BadSignature => refusal(
            "the client's certificate does not carry a valid signature of its issuer (a different CA \
             key with the same name, or a damaged certificate)",
            TRUST_HINT,
        ),
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => refusal(
            "the client's certificate is signed with an algorithm this server does not accept",
            "reissue it signed with ECDSA (P-256/P-384, SHA-256/384), Ed25519 or RSA (2048+ bits, SHA-256 or better)",
        ),
        C::UnhandledCriticalExtension => refusal(
            "the client's certificate has an extension marked critical that the verifier does not know",
            "reissue it without that extension marked critical",
        ),
        C::BadEncoding => refusal(
            "the client's certificate is not valid DER-encoded X.509",
            "reissue it; check that the client loads the file it should",
        ),
        C::Other(other) => {
            let pki = other.0.downcast_ref::<webpki::Error>()?;
            match pki {
                webpki::Error::UnsupportedCertVersion => refusal(
                    "the client's certificate is an X.509 version 1 certificate (what `openssl x509 -req` \
                     makes when no -extfile is given): version 1 has no extensions, so it cannot say that \
                     it is a client certificate and not a CA, and only version 3 is accepted",
                    V3_HINT,
                ),
                webpki::Error::CaUsedAsEndEntity => refusal(
                    "the client presented a CA certificate (basicConstraints CA:TRUE) as its own",
                    "issue the client a certificate with `basicConstraints=CA:FALSE`",
                ),
                webpki::Error::UnsupportedCriticalExtension => refusal(
                    "the client's certificate has an extension marked critical that the verifier does not know",
                    "reissue it without that extension marked critical",
                ),
                webpki::Error::MaximumPathDepthExceeded | webpki::Error::MaximumPathBuildCallsExceeded => refusal(
                    "the client's certificate chain is too long or too tangled to verify",
                    "issue the client certificate closer to the CA in the server's CA file",
                ),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(e: TlsError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn dates_read_as_utc() {
        assert_eq!(date(1_609_459_200), "2021-01-01T00:00:00Z");
    }

    #[test]
    fn every_explained_refusal_has_a_reason_a_hint_and_the_raw_error() {
        let v1 =
            CertificateError::Other(rustls::OtherError(std::sync::Arc::new(webpki::Error::UnsupportedCertVersion)));
        let m = explain(&io(TlsError::InvalidCertificate(v1)));
        assert!(m.contains("version 1") && m.contains("-extfile") && m.contains("UnsupportedCertVersion"), "{m}");
        for e in [
            TlsError::NoCertificatesPresented,
            TlsError::AlertReceived(AlertDescription::UnknownCA),
            TlsError::InvalidCertificate(CertificateError::UnknownIssuer),
            TlsError::InvalidCertificate(CertificateError::InvalidPurpose),
            TlsError::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        ] {
            let m = explain(&io(e));
            assert!(m.contains("; what to do: ") && m.contains("(rustls: "), "{m}");
        }
        let m = explain(&io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(m.contains("closed the connection"), "{m}");
    }
}
