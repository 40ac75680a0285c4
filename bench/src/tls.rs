//! The wss:// rows: the run's certificates (rcgen, into build/bench/tls/),
//! the load generator's TLS client (TLS 1.3, AES-128-GCM only, so the rows
//! compare implementations, not ciphers) and each server's TLS mode: its
//! echo argv with `{cert}` and `{key}`, which `Server::start` fills in.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::client::{FrameBuf, WsConn};
use crate::hotloop::Wire;
use crate::procs::Launch;
use crate::servers::Spec;

/// In a launch's argv: the server certificate's and key's PEM files.
pub const CERT: &str = "{cert}";
pub const KEY: &str = "{key}";

/// The servers with a TLS mode here (`launch`); the others have no wss://
/// rows.
pub const SERVERS: [&str; 6] =
    ["wsserver-c", "tokio-tungstenite", "libwebsockets", "boost-beast", "node-ws", "python-websockets"];

pub type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// The run's TLS material: PEM files for the servers, and the client
/// configuration that trusts their CA.
pub struct Material {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub client: Arc<ClientConfig>,
}

impl Material {
    /// A fresh CA and server certificate (127.0.0.1, localhost) in `dir`:
    /// ca.pem, server.pem, server.key (PKCS#8).
    pub fn generate(dir: &Path) -> Result<Material, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            KeyUsagePurpose,
        };
        let e = |e: rcgen::Error| format!("certificate generation: {e}");
        let ca_key = KeyPair::generate().map_err(e)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "wsbench CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
        let key = KeyPair::generate().map_err(e)?;
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).map_err(e)?;
        leaf.distinguished_name.push(DnType::CommonName, "localhost");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = leaf.signed_by(&key, &Issuer::from_params(&ca, &ca_key)).map_err(e)?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let m = Material {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            ca: dir.join("ca.pem"),
            client: client_config(ca_cert.der().clone())?,
        };
        for (path, pem) in [(&m.ca, ca_cert.pem()), (&m.cert, cert.pem()), (&m.key, key.serialize_pem())] {
            std::fs::write(path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(m)
    }
}

/// TLS 1.3, AES-128-GCM only, trusting `ca` alone.
fn client_config(ca: CertificateDer<'static>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots.add(ca).map_err(|e| format!("CA certificate: {e}"))?;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    let cfg = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS client configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

static MATERIAL: OnceLock<Result<Material, String>> = OnceLock::new();

/// Makes the run's material in `dir` (once; later calls keep the first).
pub fn init(dir: &Path) {
    MATERIAL.get_or_init(|| Material::generate(dir));
}

/// The run's material, or why there is none.
pub fn material() -> Result<&'static Material, String> {
    MATERIAL.get().ok_or("no TLS material (tls::init not called)")?.as_ref().map_err(String::clone)
}

/// `argv` with `{cert}` and `{key}` replaced by the run's PEM files.
pub fn with_certs(argv: Vec<String>) -> Result<Vec<String>, String> {
    let m = material()?;
    let (cert, key) = (m.cert.display().to_string(), m.key.display().to_string());
    Ok(argv.into_iter().map(|a| a.replace(CERT, &cert).replace(KEY, &key)).collect())
}

/// The client side of one TLS handshake on `tcp`, to the server at `addr`
/// (its certificate names 127.0.0.1).
pub async fn connect(addr: SocketAddr, tcp: TcpStream) -> io::Result<ClientStream> {
    let m = material().map_err(io::Error::other)?;
    TlsConnector::from(m.client.clone()).connect(ServerName::IpAddress(addr.ip().into()), tcp).await
}

/// A `WsConn`'s stream: plain TCP (Left) or TLS over it (Right).
pub type Stream = tokio_util::either::Either<TcpStream, Box<ClientStream>>;

/// A hot loop's TLS connection: the non-blocking socket and the rustls
/// session, driven by hand (read_tls / process_new_packets / reader on
/// input; writer / write_tls into one buffer, sent in one send_all, on
/// output). The loops hold their wires by shared reference, hence the
/// RefCells (one thread; never borrowed across calls).
pub struct TlsWire {
    tcp: StdStream,
    tls: RefCell<ClientConnection>,
    out: RefCell<Vec<u8>>,
}

impl TlsWire {
    pub fn new(tcp: StdStream, mut tls: ClientConnection) -> TlsWire {
        // One whole 16 KiB message is written at once, never partly.
        tls.set_buffer_limit(None);
        TlsWire { tcp, tls: RefCell::new(tls), out: RefCell::new(Vec::with_capacity(17 << 10)) }
    }
}

impl AsRawFd for TlsWire {
    fn as_raw_fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }
}

/// recv(2) on a socket as an `io::Read`, for rustls's read_tls.
struct Recv(RawFd);

impl Read for Recv {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::sock::recv(self.0, buf)
    }
}

impl Wire for TlsWire {
    const TLS: bool = true;

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut tls = self.tls.borrow_mut();
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // No plaintext left: decrypt what the socket has (WouldBlock
            // when it has nothing either).
            if tls.read_tls(&mut Recv(self.tcp.as_raw_fd()))? == 0 {
                return Ok(0);
            }
            tls.process_new_packets().map_err(io::Error::other)?;
        }
    }

    fn buffered(&self) -> bool {
        let mut tls = self.tls.borrow_mut();
        tls.process_new_packets().map(|s| s.plaintext_bytes_to_read() > 0).unwrap_or(false)
    }

    fn send_all(&self, data: &[u8]) -> Result<(), String> {
        let (mut tls, mut out) = (self.tls.borrow_mut(), self.out.borrow_mut());
        tls.writer().write_all(data).map_err(|e| e.to_string())?;
        out.clear();
        while tls.wants_write() {
            tls.write_tls(&mut *out).map_err(|e| e.to_string())?;
        }
        self.tcp.send_all(&out)
    }

    fn from_conn(c: WsConn) -> io::Result<(Self, FrameBuf)> {
        let (Stream::Right(s), fb) = c.into_inner() else { return Err(io::Error::other("not a TLS connection")) };
        let (tcp, tls) = s.into_inner();
        Ok((TlsWire::new(tcp.into_std()?, tls), fb))
    }
}

/// The TLS mode of `spec` (its echo mode over TLS), None when it has none.
/// wsserver-c: build/examples/tls_echo_server beside its echo_server; the
/// peers: their echo command line plus `--tls CERT KEY`.
pub fn launch(spec: &Spec) -> Option<Result<Launch, String>> {
    SERVERS.contains(&spec.name).then_some(())?;
    let echo = &spec.echo.argv;
    let (cert, key) = (CERT.to_string(), KEY.to_string());
    let argv = if spec.name == "wsserver-c" {
        let exe = Path::new(&echo[0]).with_file_name("tls_echo_server");
        if !exe.exists() {
            return Some(Err(format!("{} not built (run make)", exe.display())));
        }
        [vec![exe.display().to_string(), cert, key], echo[1..].to_vec()].concat()
    } else {
        [echo.clone(), vec!["--tls".into(), cert, key]].concat()
    };
    Some(material().map(|_| Launch { argv, raw: spec.echo.raw }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    use std::time::{Duration, Instant};

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wsbench-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// A rustls server on `m`'s files, its defaults, for one connection:
    /// reads "hello", answers "world!"; returns the suite it agreed.
    fn serve_once(m: &Material) -> (SocketAddr, std::thread::JoinHandle<Result<rustls::CipherSuite, String>>) {
        let certs: Vec<_> = CertificateDer::pem_file_iter(&m.cert).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(&m.key).unwrap();
        let cfg = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
            let mut conn = rustls::ServerConnection::new(Arc::new(cfg)).unwrap();
            let mut s = rustls::Stream::new(&mut conn, &mut tcp);
            let mut b = [0u8; 5];
            s.read_exact(&mut b).map_err(|e| e.to_string())?;
            assert_eq!(&b, b"hello");
            s.write_all(b"world!").map_err(|e| e.to_string())?;
            s.flush().map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(100));
            Ok(s.conn.negotiated_cipher_suite().unwrap().suite())
        });
        (addr, h)
    }

    /// Our client's handshake with the server at `addr`, blocking, then the
    /// socket made non-blocking for a `TlsWire`.
    fn client_wire(client: Arc<ClientConfig>, addr: SocketAddr) -> Result<TlsWire, String> {
        let tcp = StdStream::connect(addr).unwrap();
        let mut conn = ClientConnection::new(client, ServerName::IpAddress(addr.ip().into())).unwrap();
        let mut blocking = &tcp;
        while conn.is_handshaking() {
            conn.complete_io(&mut blocking).map_err(|e| e.to_string())?;
        }
        tcp.set_nonblocking(true).unwrap();
        Ok(TlsWire::new(tcp, conn))
    }

    /// The generated files make a server our client accepts (chain and IP
    /// address verified), on AES-128-GCM, and the hot loop's `TlsWire`
    /// carries bytes both ways, read in pieces smaller than a record.
    #[test]
    fn generated_certificates_pass_our_client_and_carry_data() {
        let dir = tmp("handshake");
        let m = Material::generate(&dir).unwrap();
        for f in [&m.cert, &m.key, &m.ca] {
            assert!(std::fs::read_to_string(f).unwrap().starts_with("-----BEGIN"), "{}", f.display());
        }
        let (addr, srv) = serve_once(&m);
        let wire = client_wire(m.client.clone(), addr).unwrap();
        wire.send_all(b"hello").unwrap();
        let mut got = Vec::new();
        let t0 = Instant::now();
        while got.len() < 6 && t0.elapsed() < Duration::from_secs(10) {
            let mut b = [0u8; 2];
            match wire.recv(&mut b) {
                Ok(n) => got.extend_from_slice(&b[..n]),
                Err(e) if crate::sock::transient(&e) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("{e}"),
            }
            // What is left of the record waits in the session, announced by
            // `buffered` rather than by the socket.
            assert_eq!(wire.buffered(), (2..6).contains(&got.len()), "after {} bytes", got.len());
        }
        assert_eq!(got, b"world!");
        let suite = wire.tls.borrow().negotiated_cipher_suite().map(|s| s.suite());
        assert_eq!(suite, Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256));
        assert_eq!(srv.join().unwrap(), Ok(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A server certificate from another run's CA is refused.
    #[test]
    fn another_ca_is_not_trusted() {
        let (a, b) = (tmp("a"), tmp("b"));
        let (ma, mb) = (Material::generate(&a).unwrap(), Material::generate(&b).unwrap());
        let (addr, srv) = serve_once(&mb);
        let err = client_wire(ma.client.clone(), addr).err().expect("handshake refused");
        // Both CAs have the same name: the chain is refused on its signature.
        assert!(err.contains("invalid peer certificate"), "{err}");
        assert!(srv.join().unwrap().is_err());
        let _ = (std::fs::remove_dir_all(&a), std::fs::remove_dir_all(&b));
    }

    #[test]
    fn only_servers_with_a_tls_mode_have_the_rows() {
        let tls_rows = |quick| {
            let w = crate::Plan::new(quick, None).workloads().into_iter().filter(|w| w.phase == "tls");
            w.map(|w| (w.id, w.job.1)).collect::<Vec<_>>()
        };
        assert_eq!(
            tls_rows(true),
            [("wss_echo_16b_100c".into(), 100), ("wss_echo_16k_100c".into(), 100), ("mem_1k_tls".into(), 1000)]
        );
        assert_eq!(tls_rows(false)[2], ("mem_10k_tls".into(), 10_000));
        let spec = |name| Spec::bare(name, crate::servers::Family::Peer, &["/x/echo_server", "127.0.0.1", "{port}"]);
        let plan = crate::Plan::new(true, None);
        assert!(!plan.has(&spec("qtwebsockets"), "wss_echo_16b_100c"));
        assert!(plan.has(&spec("qtwebsockets"), "echo_16b_100c"));
        assert!(plan.has(&spec("node-ws"), "mem_1k_tls"));
        // The peers' TLS mode is their echo line plus --tls; a launch naming
        // the certificate is a TLS one.
        init(&tmp("launch"));
        let l = launch(&spec("node-ws")).unwrap().unwrap();
        assert_eq!(l.argv[3..], ["--tls", CERT, KEY]);
        assert!(l.argv.iter().any(|a| a == CERT) && !spec("node-ws").echo.argv.iter().any(|a| a == CERT));
        let filled = with_certs(l.argv).unwrap();
        assert!(filled[4].ends_with("server.pem") && filled[5].ends_with("server.key"), "{filled:?}");
        assert!(launch(&spec("raw-tcp")).is_none());
        // wsserver-c: its TLS example beside echo_server, missing here.
        assert!(launch(&spec("wsserver-c")).unwrap().err().unwrap().contains("tls_echo_server not built"));
    }
}
