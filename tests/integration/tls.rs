//! wss:// through the Rust API with real TLS clients (tokio-rustls +
//! tokio-tungstenite); certificates are made at test time by
//! scripts/make-certs.sh (openssl), never committed.
use crate::common::certs::{client_config, client_config_trusting, file, tls};
use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use tokio_tungstenite::tungstenite::Message;
use wsserver::{Config, Error, Tls, TlsBuilder};
use x509_cert::der::Decode;

type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// Connects over TLS and upgrades; returns the socket and the server
/// certificate's subject.
async fn connect(port: u16, identity: Option<(&str, &str)>) -> Result<(Wss, String), String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(client_config(identity));
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let subject = x509_cert::Certificate::from_der(&der).unwrap().tbs_certificate.subject.to_string();
    let (ws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{port}/secure"), tls)
        .await
        .map_err(|e| e.to_string())?;
    Ok((ws, subject))
}

async fn echo_once<S>(ws: &mut S, text: &str)
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    ws.send(Message::text(text)).await.unwrap();
    assert_eq!(next_msg(ws).await, Message::text(text));
}

fn start_tls(t: Tls) -> (wsserver::Server, Arc<Recorder>, u16) {
    start(Config { tls: Some(t), handshake_timeout: Duration::from_millis(500), ..Config::default() }, true)
}

#[tokio::test]
async fn wss_echo_with_every_key_form() {
    for (cert, key, pw) in [
        ("server.pem", "server.key", None),
        ("server-rsa.pem", "server-rsa.key", None),
        ("server-sec1.pem", "server-sec1.key", None),
        ("server.pem", "server-enc.key", Some("secret")),
    ] {
        let (server, _rec, port) = start_tls(tls(cert, key, pw, None).expect(key));
        let (mut ws, _) = connect(port, None).await.expect(key);
        echo_once(&mut ws, key).await;
        ws.close(None).await.unwrap();
        server.close(Duration::from_secs(1));
    }
}

#[tokio::test]
async fn mutual_tls_accepts_a_good_client_and_refuses_the_others() {
    let (server, rec, port) = start_tls(tls("server.pem", "server.key", None, Some("ca.pem")).unwrap());
    assert!(connect(port, None).await.is_err(), "no client certificate must be refused");
    assert!(
        connect(port, Some(("other-client.pem", "other-client.key"))).await.is_err(),
        "a certificate from another CA must be refused"
    );
    let (mut ws, _) = connect(port, Some(("client.pem", "client.key"))).await.expect("good client");
    echo_once(&mut ws, "mutual").await;
    let subject = rec.subjects.lock().unwrap().clone();
    assert_eq!(subject, vec![Some("O=wsserver tests,CN=alice".to_string())], "RFC 4514 order: last RDN first");
    // The server's task logs a refusal after its alert is sent: the client may see the alert first.
    wait("a 'TLS handshake failed' log line", || {
        rec.logs.lock().unwrap().iter().any(|(_, m)| m.contains("TLS handshake failed"))
    });
    server.close(Duration::from_secs(1));
}

#[test]
fn configuration_errors_name_the_file_and_the_reason() {
    let err = |r: Result<Tls, Error>| match r {
        Err(Error::Tls(m)) => m,
        other => panic!("expected a TLS error, got {other:?}"),
    };
    let mut b = TlsBuilder::new();
    let m = err(b.cert_file("/nonexistent/cert.pem").map(|_| unreachable!()));
    assert!(m.contains("/nonexistent/cert.pem"), "{m}");
    let m = err(b.cert_file(&file("server.key")).map(|_| unreachable!()));
    assert!(m.contains("no certificate"), "{m}");
    let m = err(b.key_file(&file("server-enc.key"), Some("wrong")).map(|_| unreachable!()));
    assert!(m.contains("wrong password"), "{m}");
    let m = err(b.key_file(&file("server-enc.key"), None).map(|_| unreachable!()));
    assert!(m.contains("encrypted"), "{m}");
    let m = err(b.key_file(&file("ed448.key"), None).map(|_| unreachable!()));
    assert!(m.contains("unsupported key type"), "{m}");
    let m = err(b.key_file(&file("server.pem"), None).map(|_| unreachable!()));
    assert!(m.contains("no private key"), "{m}");
    let m = err(tls("server.pem", "server2.key", None, None));
    assert!(m.contains("does not match"), "{m}");
    let m = err(TlsBuilder::new().build());
    assert!(m.contains("no certificate"), "{m}");
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_handshakes_only() {
    let (server, _rec, port) = start_tls(tls("server.pem", "server.key", None, None).unwrap());
    let (mut old, subject) = connect(port, None).await.unwrap();
    assert!(subject.contains("O=wsserver") && !subject.contains("renewed"), "{subject}");
    server.reload_tls(tls("server2.pem", "server2.key", None, None).unwrap()).unwrap();
    let (mut new, subject) = connect(port, None).await.unwrap();
    assert!(subject.contains("renewed"), "{subject}");
    echo_once(&mut old, "old connection still works").await;
    echo_once(&mut new, "new connection").await;
    // A mismatched pair fails when it is built (the Rust API has no Tls to
    // hand to reload_tls then), so the renewed certificate stays in force.
    assert!(tls("server.pem", "server2.key", None, None).is_err());
    let (_, subject) = connect(port, None).await.unwrap();
    assert!(subject.contains("renewed"), "{subject}");
    server.close(Duration::from_secs(1));
}

#[tokio::test]
async fn bad_tls_clients_are_dropped_without_disturbing_others() {
    let (server, rec, port) = start_tls(tls("server.pem", "server.key", None, None).unwrap());
    let (mut good, _) = connect(port, None).await.unwrap();
    // Garbage, plain HTTP, and a client stalling mid-handshake.
    let mut garbage = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    garbage.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4]).await.unwrap();
    let mut http = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut stall = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stall.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    for (name, s) in [("garbage", &mut garbage), ("http", &mut http), ("stall", &mut stall)] {
        let mut buf = [0u8; 256];
        let ended = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "{name} client was not dropped");
    }
    echo_once(&mut good, "still here").await;
    assert!(rec.snapshot().iter().all(|e| !matches!(e, Ev::Close(..))), "{:?}", rec.snapshot());
    server.close(Duration::from_secs(1));
}

#[tokio::test]
async fn an_expired_certificate_is_served_with_a_warning_and_clients_refuse_it() {
    let (server, rec, port) = start_tls(tls("expired.pem", "expired.key", None, None).expect("expired still loads"));
    let logs = rec.logs.lock().unwrap().clone();
    assert!(
        logs.iter().any(|(l, m)| *l == wsserver::LogLevel::Warn && m.contains("expired") && m.contains("expired.pem")),
        "{logs:?}"
    );
    let err = connect(port, None).await.expect_err("a verifying client must refuse an expired certificate");
    assert!(err.to_lowercase().contains("expired"), "{err}");
    server.close(Duration::from_secs(1));
}

#[tokio::test]
async fn wss_with_several_io_threads() {
    let config =
        Config { tls: Some(tls("server.pem", "server.key", None, None).unwrap()), threads: 3, ..Config::default() };
    let (server, rec, port) = start(config, true);
    let mut clients = Vec::new();
    for i in 0..6 {
        let (ws, _) = connect(port, None).await.expect("connect");
        clients.push((i, ws));
    }
    for (i, ws) in clients.iter_mut() {
        echo_once(ws, &format!("client {i}")).await;
    }
    for (_, mut ws) in clients {
        ws.close(None).await.unwrap();
    }
    assert!(rec.wait_until(Duration::from_secs(5), |ev| ev.iter().filter(|e| matches!(e, Ev::Close(..))).count() == 6));
    check_event_order(&rec.snapshot());
    server.close(Duration::from_secs(1));
}

/// The server's log line for a TLS refusal: waits up to 5 s for a
/// "TLS handshake failed" line containing every needle; returns it.
fn refusal_line(rec: &Recorder, needles: &[&str]) -> String {
    let find = || {
        rec.logs.lock().unwrap().iter().find_map(|(_, m)| {
            (m.contains("TLS handshake failed") && needles.iter().all(|n| m.contains(n))).then(|| m.clone())
        })
    };
    poll_until(Duration::from_secs(5), || find().is_some());
    let line =
        find().unwrap_or_else(|| panic!("no refusal line with {needles:?}; logs: {:#?}", rec.logs.lock().unwrap()));
    eprintln!("logged: {line}");
    line
}

/// Each client certificate the verifier refuses is logged with the reason
/// in plain words and what to do (the certificates come from
/// scripts/make-certs.sh; none of these clients gets a WebSocket).
#[tokio::test]
async fn refused_client_certificates_are_logged_with_the_reason_and_what_to_do() {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let der = CertificateDer::from_pem_file(file("client-v1.pem")).unwrap();
    let v1 = x509_cert::Certificate::from_der(&der).unwrap();
    assert_eq!(v1.tbs_certificate.version, x509_cert::Version::V1, "make-certs.sh must make a v1 certificate");
    let (server, rec, port) = start_tls(tls("server.pem", "server.key", None, Some("ca.pem")).unwrap());
    type Case<'a> = (Option<(&'a str, &'a str)>, &'a [&'a str]);
    let cases: [Case; 6] = [
        (
            Some(("client-v1.pem", "client-v1.key")),
            &[
                "X.509 version 1",
                "what to do: issue a version 3 certificate",
                "-extfile client.ext",
                "UnsupportedCertVersion",
            ],
        ),
        (
            Some(("client-expired.pem", "client-expired.key")),
            &["client's certificate expired on 2021-01-01T00:00:00Z", "what to do: issue the client a new certificate"],
        ),
        (
            Some(("client-future.pem", "client-future.key")),
            &["not valid before 2090-01-01T00:00:00Z", "what to do: check the clocks"],
        ),
        (
            Some(("client-serverauth.pem", "client-serverauth.key")),
            &[
                "not allowed for client authentication",
                "lists server authentication but not clientAuth",
                "what to do: reissue it with `extendedKeyUsage=clientAuth`",
            ],
        ),
        (
            Some(("other-client.pem", "other-client.key")),
            &[
                "not issued by a CA this server trusts",
                "what to do: issue the client certificate from a CA in the server's CA file",
            ],
        ),
        (
            None,
            &[
                "the client sent no certificate, and this server requires one",
                "what to do: give the client a certificate",
            ],
        ),
    ];
    for (identity, needles) in cases {
        let result = async {
            let (mut ws, _) = connect(port, identity).await?;
            // TLS 1.3: the client's handshake may finish before the server
            // has judged its certificate; the server's alert ends it then.
            ws.send(Message::text("let me in")).await.map_err(|e| e.to_string())?;
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => Ok(t.to_string()),
                other => Err(format!("{other:?}")),
            }
        }
        .await;
        assert!(result.is_err(), "{identity:?} must be refused, got {result:?}");
        let line = refusal_line(&rec, needles);
        assert!(line.contains("(rustls: "), "the line keeps rustls' words: {line}");
    }
    assert!(rec.opened().is_empty(), "no refused client may open: {:?}", rec.snapshot());
    server.close(Duration::from_secs(1));
}

/// The other way round: a client that refuses the server's certificate, and
/// one that speaks plain ws:// to the wss:// port.
#[tokio::test]
async fn refusals_by_the_client_and_plain_text_are_explained_too() {
    let (server, rec, port) = start_tls(tls("server.pem", "server.key", None, None).unwrap());
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config_trusting("other-ca.pem", None));
    let refused = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await;
    assert!(refused.is_err(), "a client trusting another CA must refuse the server");
    refusal_line(&rec, &["the client refused the server's certificate", "what to do: the client must trust the CA"]);
    let mut plain = RawClient::connect(port);
    plain.write(upgrade_request("/", "").as_bytes());
    let _ = plain.read_response();
    refusal_line(&rec, &["did not speak TLS", "plain ws://", "what to do: connect with a wss://"]);
    server.close(Duration::from_secs(1));
}

/// SECURITY.md lists exactly what the server's provider offers: every
/// cipher suite and key exchange group, and both TLS versions.
#[test]
fn security_md_names_every_suite_and_group_offered() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/SECURITY.md")).unwrap();
    let provider = rustls::crypto::ring::default_provider();
    let suites: Vec<String> = provider.cipher_suites.iter().map(|s| format!("{:?}", s.suite())).collect();
    let groups: Vec<String> = provider.kx_groups.iter().map(|g| format!("{:?}", g.name())).collect();
    assert_eq!(suites.len(), 9, "{suites:?}");
    for name in suites.iter().chain(&groups) {
        assert!(doc.contains(name.as_str()), "SECURITY.md does not name {name}");
    }
    assert!(doc.contains("**Versions:** TLS 1.3 and TLS 1.2"));
    // And nothing more: the doc's TLS_ names are all offered.
    for word in doc.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("TLS13_") || word.starts_with("TLS_ECDHE") {
            assert!(suites.iter().any(|s| s == word), "SECURITY.md names {word}, which is not offered");
        }
    }
}

// ---------------------------------------------------------------------------
// The server's TLS stream (src/tls_stream.rs): records split across reads,
// messages of many records, a socket that takes part of the output, the
// close_notify at the end, the alert that explains a refusal.
// ---------------------------------------------------------------------------

/// A client socket that writes at most `chunk` bytes per write (no Nagle):
/// the server's reads end inside records, headers included.
struct Dribble {
    tcp: TcpStream,
    chunk: usize,
}

impl tokio::io::AsyncRead for Dribble {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Dribble {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let n = buf.len().min(this.chunk);
        std::pin::Pin::new(&mut this.tcp).poll_write(cx, &buf[..n])
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// TLS and the upgrade over `io`, trusting the test CA.
async fn upgrade_over<IO>(port: u16, io: IO) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<IO>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let connector = tokio_rustls::TlsConnector::from(client_config(None));
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), io).await.expect("TLS handshake");
    tokio_tungstenite::client_async(format!("wss://localhost:{port}/"), tls).await.expect("upgrade").0
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn big_tls_config() -> Config {
    Config {
        tls: Some(tls("server.pem", "server.key", None, None).unwrap()),
        max_message_size: 8 << 20,
        send_queue_limit: 16 << 20,
        send_queue_hard_limit: 32 << 20,
        ..Config::default()
    }
}

#[tokio::test]
async fn records_split_across_reads_and_messages_of_many_records_echo_intact() {
    let (server, rec, port) = start(big_tls_config(), true);
    for chunk in [1, 7, 1000] {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut ws = upgrade_over(port, Dribble { tcp, chunk }).await;
        // 1 B; one record and a bit; many records (16 KiB of plaintext each).
        let sizes: &[usize] = if chunk == 1 { &[1, 17_000] } else { &[1, 17_000, 300_000] };
        for (i, &len) in sizes.iter().enumerate() {
            let data = payload(len, i as u8);
            ws.send(Message::binary(data.clone())).await.unwrap();
            match next_msg(&mut ws).await {
                Message::Binary(b) => assert!(b[..] == data[..], "chunk {chunk}: {len} bytes came back changed"),
                other => panic!("chunk {chunk}: {other:?}"),
            }
        }
        ws.close(None).await.unwrap();
    }
    assert!(!rec.logs.lock().unwrap().iter().any(|(_, m)| m.contains("TLS")), "{:?}", rec.logs.lock().unwrap());
    server.close(Duration::from_secs(1));
}

/// A client that does not read while the host sends 200 messages (6 MiB):
/// the socket takes part of each write, the rest waits encrypted in the
/// stream and goes first; every byte arrives, in order.
#[test]
fn a_slow_reader_gets_every_message_in_order_over_tls() {
    const N: usize = 200;
    let (server, rec, port) = start(big_tls_config(), false);
    let h = server.handle();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut ws = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(8 * 1024).unwrap();
        let tcp = sock.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        upgrade_over(port, tcp).await
    });
    let id = rec.nth_open(0);
    // Message i: sizes around a record's 16 KiB and past it, numbered.
    let message = |i: usize| {
        let mut msg = payload([10, 1_000, 16_384, 16_385, 70_000, 100_000][i % 6], i as u8);
        msg[0] = i as u8;
        msg
    };
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            h.send(id, &message(i), wsserver::Kind::Binary).expect("queued");
        }
    });
    std::thread::sleep(Duration::from_millis(300)); // the server's socket fills meanwhile
    rt.block_on(async {
        for i in 0..N {
            let want = message(i);
            match next_msg(&mut ws).await {
                Message::Binary(b) => {
                    assert!(b[..] == want[..], "message {i}: {} bytes, changed or out of order", b.len())
                }
                other => panic!("message {i}: {other:?}"),
            }
        }
    });
    sender.join().unwrap();
    let h = server.handle();
    assert_eq!(h.queued_bytes(id), Ok(0), "all of it went out");
    server.close(Duration::from_secs(1));
}

/// The close handshake ends with TLS's own: the server sends close_notify
/// (the client reads a clean end, not a truncated stream), after the
/// client's.
#[tokio::test]
async fn the_close_handshake_ends_with_close_notify() {
    let (server, rec, port) = start(big_tls_config(), true);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut ws = upgrade_over(port, tcp).await;
    echo_once(&mut ws, "before the close").await;
    ws.send(Message::Close(None)).await.unwrap();
    assert!(matches!(next_msg(&mut ws).await, Message::Close(_)), "the server answers the close");
    // tokio-rustls reports a stream cut without close_notify as UnexpectedEof.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), ws.get_mut().read_to_end(&mut rest)).await.unwrap();
    assert_eq!(end.map_err(|e| e.kind()), Ok(0), "a clean end: close_notify, then the end of the stream");
    assert!(rec.wait_until(Duration::from_secs(5), |ev| ev.iter().any(|e| matches!(e, Ev::Close(_, 1005, _)))));
    server.close(Duration::from_secs(1));
}

/// A refused handshake tells the client why with a TLS alert (not just a
/// closed socket): no client certificate where one is required, and an
/// application protocol the server does not speak.
#[tokio::test]
async fn a_refused_handshake_sends_the_client_an_alert() {
    let (server, _rec, port) = start_tls(tls("server.pem", "server.key", None, Some("ca.pem")).unwrap());
    let err = connect(port, None).await.expect_err("no client certificate");
    assert!(err.contains("alert") && err.contains("CertificateRequired"), "{err}");
    server.close(Duration::from_secs(1));

    let (server, _rec, port) = start_tls(tls("server.pem", "server.key", None, None).unwrap());
    let mut config = (*client_config(None)).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let err = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.expect_err("h2 only");
    assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");
    server.close(Duration::from_secs(1));
}

/// The client renews its keys and asks for ours (TLS 1.3 KeyUpdate,
/// update_requested) between messages, more times than the server allows
/// in a row without data: each time the server reads under the client's
/// new key and answers with its own KeyUpdate before its next record, which
/// the client must read to decrypt the echo. Both directions are rekeyed
/// 40 times; every echo arrives intact.
#[tokio::test]
async fn key_updates_both_ways_keep_the_connection() {
    let (server, rec, port) = start(big_tls_config(), true);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut ws = upgrade_over(port, tcp).await;
    assert_eq!(ws.get_ref().get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    for i in 0..40 {
        ws.get_mut().get_mut().1.refresh_traffic_keys().unwrap();
        // Past one record, so a message spans records under one key.
        let data = payload(if i % 4 == 0 { 20_000 } else { 10 }, i as u8);
        ws.send(Message::binary(data.clone())).await.unwrap();
        match next_msg(&mut ws).await {
            Message::Binary(b) => assert!(b[..] == data[..], "after key update {i}: changed"),
            other => panic!("after key update {i}: {other:?}"),
        }
    }
    ws.close(None).await.unwrap();
    assert!(!rec.logs.lock().unwrap().iter().any(|(_, m)| m.contains("TLS")), "{:?}", rec.logs.lock().unwrap());
    server.close(Duration::from_secs(1));
}

/// Bad records after the handshake, written under the client's TLS onto
/// its socket: a record that fails authentication, one longer than TLS
/// allows, an unencrypted handshake record, and too many KeyUpdates with no
/// data between them. Each ends its own connection with the alert that
/// says why (the client reads it) and a log line naming the fault; another
/// connection echoes throughout.
#[tokio::test]
async fn bad_records_end_their_connection_with_the_right_alert() {
    let (server, rec, port) = start(big_tls_config(), true);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut good = upgrade_over(port, tcp).await;
    let cases: [(&str, Vec<u8>, &str, &str); 3] = [
        ("forged", [&[23u8, 3, 3, 0, 40][..], &[0x5a; 40]].concat(), "BadRecordMac", "fails authentication"),
        ("oversized", vec![23, 3, 3, 0x41, 0x01], "RecordOverflow", "over 2^14 + 256"),
        ("unencrypted", vec![22, 3, 3, 0, 5, 24, 0, 0, 1, 0], "UnexpectedMessage", "unencrypted record"),
    ];
    for (name, bytes, alert, log) in cases {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut ws = upgrade_over(port, tcp).await;
        echo_once(&mut ws, name).await;
        ws.get_mut().get_mut().0.write_all(&bytes).await.unwrap();
        let end = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("the server ends it");
        let err = format!("{end:?}");
        assert!(err.contains(alert), "{name}: {err}");
        assert!(
            rec.wait_until(Duration::from_secs(5), |_| rec.logs.lock().unwrap().iter().any(|(_, m)| m.contains(log))),
            "{name}: {:?}",
            rec.logs.lock().unwrap()
        );
        echo_once(&mut good, name).await;
    }
    // KeyUpdates alone: 32 in a row are taken, the 33rd ends it.
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut ws = upgrade_over(port, tcp).await;
    for _ in 0..33 {
        ws.get_mut().get_mut().1.refresh_traffic_keys().unwrap();
        ws.get_mut().write_all(&[]).await.unwrap();
        ws.get_mut().flush().await.unwrap();
    }
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("the server ends it");
    assert!(format!("{end:?}").contains("UnexpectedMessage"), "{end:?}");
    let many = |_: &[Ev]| rec.logs.lock().unwrap().iter().any(|(_, m)| m.contains("too many KeyUpdates"));
    assert!(rec.wait_until(Duration::from_secs(5), many), "{:?}", rec.logs.lock().unwrap());
    echo_once(&mut good, "still here").await;
    server.close(Duration::from_secs(1));
}

/// A TLS 1.2 client: rustls keeps the record layer (ours is TLS 1.3's
/// alone). Messages of one record and of many echo intact, and the close
/// ends with close_notify.
#[tokio::test]
async fn a_tls12_client_keeps_rustls_records() {
    let (server, _rec, port) = start(big_tls_config(), true);
    let config = crate::common::certs::client_config_for(&[&rustls::version::TLS12], "ca.pem", None);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.expect("TLS 1.2 handshake");
    assert_eq!(tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{port}/"), tls).await.unwrap();
    for (i, len) in [1, 17_000, 300_000].into_iter().enumerate() {
        let data = payload(len, i as u8);
        ws.send(Message::binary(data.clone())).await.unwrap();
        match next_msg(&mut ws).await {
            Message::Binary(b) => assert!(b[..] == data[..], "{len} bytes came back changed"),
            other => panic!("{other:?}"),
        }
    }
    ws.send(Message::Close(None)).await.unwrap();
    assert!(matches!(next_msg(&mut ws).await, Message::Close(_)));
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), ws.get_mut().read_to_end(&mut rest)).await.unwrap();
    assert_eq!(end.map_err(|e| e.kind()), Ok(0), "close_notify, then the end of the stream");
    server.close(Duration::from_secs(1));
}
