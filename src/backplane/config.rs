//! The backplane's address: a `redis://` or `rediss://` URL, checked once
//! (when the host sets it) so that every mistake is reported there, naming
//! what is wrong, and never at the first publish.
//!
//! Accepted: `redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P][&ca_file=PATH]`.
//! `prefix` (default `wsserver:`) starts every channel name on the broker,
//! so servers on one broker with different prefixes never see each
//! other's topics; `ca_file` (rediss only) names a PEM file of CA
//! certificates to verify the broker with instead of the system's roots.
use crate::Error;
use std::fmt;

/// The channel prefix when the URL names none.
pub(crate) const DEFAULT_PREFIX: &str = "wsserver:";
/// The longest channel prefix, in bytes.
pub(crate) const MAX_PREFIX_LEN: usize = 256;

/// Where the backplane's broker is and how to reach it; see
/// [`Backplane::parse`]. Cheap to clone.
#[derive(Clone)]
pub struct Backplane {
    /// The URL as given, with the password replaced by `***`, for logs.
    shown: String,
    /// What the redis client connects with (the URL without our own query
    /// parameters).
    pub(crate) info: redis::ConnectionInfo,
    pub(crate) tls: bool,
    pub(crate) prefix: String,
    /// PEM bytes of `ca_file`, read when the URL was parsed.
    pub(crate) ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for Backplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backplane").field("url", &self.shown).field("prefix", &self.prefix).finish()
    }
}

fn bad(why: String) -> Error {
    Error::InvalidArgument(format!("backplane URL: {why}"))
}

impl Backplane {
    /// Parses and checks a backplane URL (see the module doc); a `ca_file`
    /// is read now. The error says what is wrong.
    pub fn parse(url: &str) -> Result<Backplane, Error> {
        if !url.contains("://") {
            return Err(bad(format!("'{}' must start with redis:// or rediss://", redact_str(url))));
        }
        let mut parsed = url::Url::parse(url).map_err(|e| bad(format!("'{}' is not a URL: {e}", redact_str(url))))?;
        let tls = match parsed.scheme() {
            "redis" => false,
            "rediss" => true,
            other => return Err(bad(format!("the scheme must be redis:// or rediss://, not {other}://"))),
        };
        match parsed.host_str() {
            None | Some("") => return Err(bad("no host (redis://HOST:PORT)".into())),
            Some(_) => {}
        }
        if parsed.fragment().is_some() {
            return Err(bad("a #fragment is not supported (#insecure: use ca_file= to trust a private CA)".into()));
        }
        let db = parsed.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u32>().is_err() {
            return Err(bad(format!("the path must be a database number (/0), not /{db}")));
        }
        let (mut prefix, mut ca_file) = (DEFAULT_PREFIX.to_string(), None);
        for (key, value) in parsed.query_pairs() {
            match &*key {
                "prefix" => prefix = value.into_owned(),
                "ca_file" => ca_file = Some(value.into_owned()),
                other => return Err(bad(format!("unknown parameter '{other}' (known: prefix, ca_file)"))),
            }
        }
        if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
            return Err(bad(format!("prefix must be 1..{MAX_PREFIX_LEN} bytes, not {}", prefix.len())));
        }
        let ca_pem = match ca_file {
            None => None,
            Some(_) if !tls => return Err(bad("ca_file needs rediss:// (TLS)".into())),
            Some(path) => Some(read_ca(&path)?),
        };
        parsed.set_query(None);
        let shown = redact(&parsed, &prefix);
        let info = redis::IntoConnectionInfo::into_connection_info(parsed.as_str())
            .map_err(|e| bad(format!("{shown}: {e}")))?;
        Ok(Backplane { shown, info, tls, prefix, ca_pem })
    }

    /// The URL without its password (`***` instead), for logs and errors.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether the broker is reached over TLS (`rediss://`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The channel prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The redis client for this address.
    pub(crate) fn client(&self) -> Result<redis::Client, Error> {
        let made = match &self.ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                self.info.clone(),
                redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) },
            ),
            None => redis::Client::open(self.info.clone()),
        };
        made.map_err(|e| Error::Io(format!("backplane {}: {e}", self.shown)))
    }
}

/// The contents of a CA file, which must hold at least one PEM certificate.
fn read_ca(path: &str) -> Result<Vec<u8>, Error> {
    let pem = std::fs::read(path).map_err(|e| bad(format!("ca_file '{path}': {e}")))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(bad(format!("ca_file '{path}' holds no PEM certificate")));
    }
    Ok(pem)
}

fn redact(url: &url::Url, prefix: &str) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if prefix == DEFAULT_PREFIX {
        u.to_string()
    } else {
        format!("{u}?prefix={prefix}")
    }
}

/// For a string that did not parse: everything between "://" and the last
/// '@' may be a password.
fn redact_str(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        Backplane::parse(url).expect_err(url).to_string()
    }

    #[test]
    fn accepts_the_documented_forms() {
        let b = Backplane::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!((b.prefix(), b.tls), (DEFAULT_PREFIX, false));
        let b = Backplane::parse("redis://:s3cret@localhost:7000/2?prefix=chat:").unwrap();
        assert_eq!(b.prefix(), "chat:");
        assert_eq!(b.info.redis_settings().password(), Some("s3cret"));
        assert!(!b.shown().contains("s3cret"), "{}", b.shown());
        assert!(Backplane::parse("rediss://user:pw@[::1]:6380/0").unwrap().tls);
    }

    #[test]
    fn every_mistake_is_named() {
        assert!(err("http://x:1").contains("redis:// or rediss://"));
        assert!(err("redis:///0").contains("no host"));
        assert!(err("not a url").contains("must start with redis:// or rediss://"));
        assert!(err("redis://h h:1").contains("is not a URL"));
        assert!(err("redis://h:99999").contains("is not a URL"));
        assert!(err("redis://h:1/abc").contains("database number"));
        assert!(err("redis://h:1?foo=1").contains("unknown parameter 'foo'"));
        assert!(err("redis://h:1?prefix=").contains("prefix must be"));
        assert!(err("redis://h:1?ca_file=/etc/hostname").contains("needs rediss://"));
        assert!(err("rediss://h:1?ca_file=/nonexistent/ca.pem").contains("/nonexistent/ca.pem"));
        assert!(err("rediss://h:1#insecure").contains("fragment"));
        assert!(!err("redis://:pw@h:abc").contains("pw"));
    }
}
