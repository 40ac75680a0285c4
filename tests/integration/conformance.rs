//! RFC 6455 conformance, spoken in raw bytes over loopback TCP.
//!
//! Every test starts its own `Server` (echoing, recording events) and talks
//! to it with [`RawClient`], which writes the handshake and masked frames by
//! hand and parses the server's frames. Protocol violations must close only
//! the offending connection, with the exact close code in the server's close
//! frame, after which the server ends the TCP connection; a bystander
//! connection on the same server must keep working.
use crate::common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wsserver::{Config, ConnId, Kind, Server};

/// Small close timeout so nothing waits long.
fn cfg() -> Config {
    Config { close_timeout: Duration::from_secs(2), ..Config::default() }
}

/// A server, its recorder, and a bystander connection that must survive
/// whatever the test does to other connections.
struct Fixture {
    server: Server,
    rec: Arc<Recorder>,
    port: u16,
    bystander: RawClient,
    bystander_id: ConnId,
}

impl Fixture {
    fn new(config: Config) -> Fixture {
        let (server, rec, port) = start(config, true);
        let mut bystander = RawClient::open(port, "/bystander");
        let bystander_id = rec.nth_open(0);
        bystander.roundtrip("bystander says hi");
        Fixture { server, rec, port, bystander, bystander_id }
    }

    /// Opens a new connection; returns it and its id.
    fn open(&self) -> (RawClient, ConnId) {
        let before = self.rec.opened().len();
        let c = RawClient::open(self.port, "/victim");
        let id = self.rec.nth_open(before);
        (c, id)
    }

    /// Opens a connection, writes `bytes`, and expects the server to fail
    /// it with `code`: a close frame with that code, then the end of the
    /// TCP connection, an `on_error` and then `on_close(code)` as its last
    /// events. The bystander must still echo.
    fn violation(&mut self, what: &str, bytes: &[u8], code: u16) {
        let (mut c, id) = self.open();
        c.write(bytes);
        c.expect_close_for(what, Some(code));
        let (got, _) = self.rec.wait_close(id);
        assert_eq!(got, code, "{what}: on_close code");
        let mine = self.rec.events_of(id);
        assert!(mine.iter().any(|e| matches!(e, Ev::Error(..))), "{what}: no on_error before on_close: {mine:?}");
        assert!(
            !mine.iter().any(|e| matches!(e, Ev::Message(..))),
            "{what}: a message was delivered from a violating connection: {mine:?}"
        );
        self.bystander_alive();
    }

    fn bystander_alive(&mut self) {
        self.bystander.roundtrip("still here");
        assert!(
            !self.rec.events_of(self.bystander_id).iter().any(|e| matches!(e, Ev::Close(..))),
            "the bystander was closed"
        );
    }

    /// Checks the bystander, closes it cleanly, closes the server (clients
    /// the test left open do not answer: they are dropped after a short
    /// grace) and checks the event order of every connection.
    fn finish(mut self) {
        self.bystander_alive();
        self.bystander.write(&close_frame(1000, b"bye"));
        self.bystander.expect_close(Some(1000));
        assert_eq!(self.rec.wait_close(self.bystander_id), (1000, "bye".to_string()));
        self.server.close(Duration::from_millis(200));
        check_event_order(&self.rec.snapshot());
    }
}

// ---------------------------------------------------------------------------
// Opening handshake
// ---------------------------------------------------------------------------

/// Sends `request` on a fresh connection and returns the server's refusal
/// (the server must then close the connection). No connection may open.
fn refused(port: u16, rec: &Recorder, request: &[u8]) -> HttpResponse {
    let opens = rec.opened().len();
    let mut c = RawClient::connect(port);
    c.write(request);
    let r = c.read_refusal();
    assert_eq!(rec.opened().len(), opens, "on_open ran for a refused request");
    assert!(r.header("Sec-WebSocket-Accept").is_none());
    r
}

#[test]
fn handshake_rfc_example_key_gets_101_with_accept() {
    let (server, rec, port) = start(cfg(), true);
    let mut c = RawClient::connect(port);
    c.write(upgrade_request("/chat?room=1", "").as_bytes());
    let r = c.expect_upgrade();
    assert_eq!(r.header_count("Sec-WebSocket-Accept"), 1);
    assert!(r.header("Upgrade").unwrap().eq_ignore_ascii_case("websocket"));
    assert!(r.header("Connection").unwrap().eq_ignore_ascii_case("upgrade"));
    assert!(r.header("Sec-WebSocket-Protocol").is_none(), "no subprotocol was offered");
    assert!(r.header("Sec-WebSocket-Extensions").is_none(), "no extension may be accepted");
    c.roundtrip("works");
    let reqs = rec.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].1.path(), "/chat");
    assert_eq!(reqs[0].1.query(), "room=1");
    assert_eq!(reqs[0].1.header("sec-websocket-key"), Some(RFC_KEY));
    assert_eq!(reqs[0].1.subprotocol(), None);
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_header_names_and_tokens_are_case_insensitive() {
    let (server, _rec, port) = start(cfg(), true);
    let mut c = RawClient::connect(port);
    let req = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n\
         sec-websocket-key: {RFC_KEY}\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n"
    );
    c.write(req.as_bytes());
    c.expect_upgrade();
    c.roundtrip("ok");
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_missing_upgrade_is_400() {
    let (server, rec, port) = start(cfg(), true);
    let req = upgrade_request("/", "").replace("Upgrade: websocket\r\n", "");
    assert_eq!(refused(port, &rec, req.as_bytes()).status, 400);
    let req = upgrade_request("/", "").replace("Upgrade: websocket", "Upgrade: h2c");
    assert_eq!(refused(port, &rec, req.as_bytes()).status, 400);
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_missing_connection_upgrade_is_400() {
    let (server, rec, port) = start(cfg(), true);
    let req = upgrade_request("/", "").replace("Connection: Upgrade\r\n", "");
    assert_eq!(refused(port, &rec, req.as_bytes()).status, 400);
    let req = upgrade_request("/", "").replace("Connection: Upgrade", "Connection: keep-alive");
    assert_eq!(refused(port, &rec, req.as_bytes()).status, 400);
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_missing_or_bad_key_is_400() {
    let (server, rec, port) = start(cfg(), true);
    let base = upgrade_request("/", "");
    let missing = base.replace(&format!("Sec-WebSocket-Key: {RFC_KEY}\r\n"), "");
    assert_eq!(refused(port, &rec, missing.as_bytes()).status, 400, "missing key");
    for bad in [
        "",                                 // empty
        "short",                            // not 16 bytes
        "dGhlIHNhbXBsZSBub25jZQ",           // unpadded
        "dGhlIHNhbXBsZSBub25jZQ===",        // 25 chars
        "dGhlIHNhbXBsZSBub25j!Q==",         // not base64
        "dGhlIHNhbXBsZSBub25jZR==",         // non-canonical final char
        "dGhlIHNhbXBsZSBub25jZSBzYW1wbGU=", // 23 bytes
    ] {
        let req = base.replace(RFC_KEY, bad);
        assert_eq!(refused(port, &rec, req.as_bytes()).status, 400, "key {bad:?}");
    }
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_missing_host_is_400() {
    let (server, rec, port) = start(cfg(), true);
    let req = upgrade_request("/", "").replace("Host: 127.0.0.1\r\n", "");
    assert_eq!(refused(port, &rec, req.as_bytes()).status, 400);
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_garbage_is_400() {
    let (server, rec, port) = start(cfg(), true);
    assert_eq!(refused(port, &rec, b"GARBAGE\r\n\r\n").status, 400);
    assert_eq!(refused(port, &rec, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n").status, 400, "TLS hello");
    assert_eq!(refused(port, &rec, b"GET / HTTP/1.1\r\nHost x\r\n\r\n").status, 400, "header without colon");
    let http10 = upgrade_request("/", "").replace("HTTP/1.1", "HTTP/1.0");
    assert_eq!(refused(port, &rec, http10.as_bytes()).status, 400, "HTTP/1.0");
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_wrong_version_is_426_with_version_header() {
    let (server, rec, port) = start(cfg(), true);
    for v in ["8", "12", "14", "13x"] {
        let req = upgrade_request("/", "").replace("Sec-WebSocket-Version: 13", &format!("Sec-WebSocket-Version: {v}"));
        let r = refused(port, &rec, req.as_bytes());
        assert_eq!(r.status, 426, "version {v}");
        assert_eq!(r.header("Sec-WebSocket-Version"), Some("13"), "version {v}: {}", r.head);
    }
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_post_is_405() {
    let (server, rec, port) = start(cfg(), true);
    let req = upgrade_request("/", "").replacen("GET", "POST", 1);
    let r = refused(port, &rec, req.as_bytes());
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET"));
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_oversized_head_is_431() {
    let (server, rec, port) = start(cfg(), true);
    // Just under 8 KiB: accepted.
    let small = upgrade_request("/", &format!("X-Pad: {}\r\n", "a".repeat(7 * 1024)));
    assert!(small.len() < 8 * 1024);
    let mut c = RawClient::connect(port);
    c.write(small.as_bytes());
    c.expect_upgrade();
    c.roundtrip("small head ok");
    // Over 8 KiB: 431.
    let big = upgrade_request("/", &format!("X-Pad: {}\r\n", "a".repeat(9 * 1024)));
    assert_eq!(refused(port, &rec, big.as_bytes()).status, 431);
    // Many headers, each small, over 8 KiB in total.
    let many: String = (0..60).map(|i| format!("X-H{i}: {}\r\n", "b".repeat(150))).collect();
    assert_eq!(refused(port, &rec, upgrade_request("/", &many).as_bytes()).status, 431);
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_subprotocol_follows_server_preference() {
    let config = Config { subprotocols: vec!["chat.v2".into(), "chat".into()], ..cfg() };
    let (server, rec, port) = start(config, true);
    let cases: [(&str, Option<&str>); 5] = [
        ("Sec-WebSocket-Protocol: chat, chat.v2\r\n", Some("chat.v2")),
        ("Sec-WebSocket-Protocol: chat\r\n", Some("chat")),
        ("Sec-WebSocket-Protocol: other\r\nSec-WebSocket-Protocol: chat\r\n", Some("chat")),
        ("Sec-WebSocket-Protocol: other, mqtt\r\n", None),
        ("", None),
    ];
    for (i, (extra, want)) in cases.iter().enumerate() {
        let mut c = RawClient::connect(port);
        c.write(upgrade_request("/", extra).as_bytes());
        let r = c.read_response().unwrap();
        assert_eq!(r.status, 101, "{extra:?}: {}", r.head);
        assert_eq!(r.header("Sec-WebSocket-Protocol"), *want, "{extra:?}: {}", r.head);
        assert!(r.header_count("Sec-WebSocket-Protocol") <= 1);
        c.roundtrip("x");
        let reqs = rec.requests.lock().unwrap().clone();
        assert_eq!(reqs[i].1.subprotocol(), *want, "Request::subprotocol for {extra:?}");
    }
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_timeout_drops_silent_and_stalled_clients_only() {
    let config = Config { handshake_timeout: Duration::from_millis(300), ..cfg() };
    let (server, rec, port) = start(config, true);
    let t0 = Instant::now();
    let mut silent = RawClient::connect(port);
    let mut stalled = RawClient::connect(port);
    stalled.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webs");
    // A good client on the same server keeps working meanwhile.
    let mut good = RawClient::open(port, "/good");
    for i in 0..5 {
        good.roundtrip(&format!("msg {i}"));
        std::thread::sleep(Duration::from_millis(20));
    }
    for (name, c) in [("silent", &mut silent), ("stalled", &mut stalled)] {
        c.set_read_timeout(Duration::from_secs(3));
        match c.read_response() {
            Err(End::Closed) => {}
            Ok(r) => assert_eq!(r.status / 100, 4, "{name}: unexpected {}", r.head),
            Err(e) => panic!("{name}: not dropped: {e:?}"),
        }
        let at = t0.elapsed();
        assert!(at >= Duration::from_millis(250), "{name} dropped too early ({at:?})");
        assert!(at < Duration::from_millis(2000), "{name} dropped too late ({at:?})");
    }
    // The good client is past its handshake: no timeout applies to it.
    std::thread::sleep(Duration::from_millis(400));
    good.roundtrip("still alive after the handshake timeout");
    assert_eq!(rec.opened().len(), 1);
    assert!(rec.closes().is_empty());
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_over_max_connections_is_503() {
    let config = Config { max_connections: 2, ..cfg() };
    let (server, rec, port) = start(config, true);
    let mut a = RawClient::open(port, "/a");
    let mut b = RawClient::open(port, "/b");
    for _ in 0..2 {
        let r = refused(port, &rec, upgrade_request("/c", "").as_bytes());
        assert_eq!(r.status, 503, "{}", r.head);
    }
    a.roundtrip("a ok");
    b.roundtrip("b ok");
    // Once a leaves, a new client fits again.
    a.write(&close_frame(1000, b""));
    a.expect_close(Some(1000));
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let mut c = RawClient::connect(port);
        c.write(upgrade_request("/d", "").as_bytes());
        let r = c.read_response().expect("response");
        if r.status == 101 {
            c.roundtrip("d ok");
            break;
        }
        assert_eq!(r.status, 503);
        assert!(Instant::now() < deadline, "the slot of a closed connection was never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    b.roundtrip("b still ok");
    server.close(Duration::from_millis(200));
}

#[test]
fn handshake_refused_by_on_open_is_403_without_close_event() {
    let (server, rec, port) = start(cfg(), true);
    let mut c = RawClient::connect(port);
    c.write(upgrade_request("/forbidden", "").as_bytes());
    let r = c.read_refusal();
    assert_eq!(r.status, 403, "{}", r.head);
    let id = rec.nth_open(0);
    assert_eq!(rec.events_of(id), vec![Ev::Open(id, "/forbidden".into())], "a refused connection got events");
    // The server is fine.
    let mut ok = RawClient::open(port, "/ok");
    ok.roundtrip("fine");
    // close returns after every on_close has run: nothing can come later.
    server.close(Duration::from_millis(200));
    assert_eq!(rec.events_of(id), vec![Ev::Open(id, "/forbidden".into())], "close reported a refused connection");
}

#[test]
fn handshake_and_first_frames_in_one_write() {
    let (server, _rec, port) = start(cfg(), true);
    let mut c = RawClient::connect(port);
    let mut bytes = upgrade_request("/", "").into_bytes();
    bytes.extend(frame(true, OP_TEXT, b"early 1"));
    bytes.extend(frame(true, OP_BINARY, b"early 2"));
    bytes.extend(frame(true, OP_PING, b"p"));
    c.write(&bytes);
    c.expect_upgrade();
    c.expect_message(OP_TEXT, b"early 1");
    c.expect_message(OP_BINARY, b"early 2");
    c.expect_message(OP_PONG, b"p");
    server.close(Duration::from_millis(200));
}

// ---------------------------------------------------------------------------
// Framing violations
// ---------------------------------------------------------------------------

#[test]
fn unmasked_client_frame_is_1002() {
    let mut fx = Fixture::new(cfg());
    fx.violation("unmasked text", &encode_frame_b0(0x81, b"hello", None), 1002);
    fx.violation("unmasked ping", &encode_frame_b0(0x89, b"", None), 1002);
    fx.violation("unmasked close", &encode_frame_b0(0x88, &1000u16.to_be_bytes(), None), 1002);
    fx.finish();
}

#[test]
fn reserved_bits_are_1002() {
    let mut fx = Fixture::new(cfg());
    for (name, bit) in [("rsv1", 0x40u8), ("rsv2", 0x20), ("rsv3", 0x10)] {
        fx.violation(name, &encode_frame_b0(0x80 | bit | OP_TEXT, b"hi", Some(MASK)), 1002);
    }
    fx.violation("rsv1 on ping", &encode_frame_b0(0x80 | 0x40 | OP_PING, b"", Some(MASK)), 1002);
    fx.finish();
}

#[test]
fn unknown_opcodes_are_1002() {
    let mut fx = Fixture::new(cfg());
    for op in (3u8..=7).chain(11..=15) {
        fx.violation(&format!("opcode {op}"), &frame(true, op, b""), 1002);
    }
    fx.finish();
}

#[test]
fn fragmented_control_frame_is_1002() {
    let mut fx = Fixture::new(cfg());
    fx.violation("ping FIN=0", &frame(false, OP_PING, b"x"), 1002);
    fx.violation("pong FIN=0", &frame(false, OP_PONG, b"x"), 1002);
    fx.violation("close FIN=0", &frame(false, OP_CLOSE, &1000u16.to_be_bytes()), 1002);
    // A fragmented ping inside a fragmented message.
    let bytes = [frame(false, OP_TEXT, b"a"), frame(false, OP_PING, b"x")].concat();
    fx.violation("ping FIN=0 between fragments", &bytes, 1002);
    fx.finish();
}

#[test]
fn control_frame_over_125_bytes_is_1002() {
    let mut fx = Fixture::new(cfg());
    fx.violation("ping 126", &frame(true, OP_PING, &[7u8; 126]), 1002);
    fx.violation("pong 126", &frame(true, OP_PONG, &[7u8; 126]), 1002);
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(&[b'r'; 124]);
    fx.violation("close 126", &frame(true, OP_CLOSE, &close), 1002);
    // 125 is fine.
    let (mut c, _) = fx.open();
    c.send(true, OP_PING, &[9u8; 125]);
    c.expect_message(OP_PONG, &[9u8; 125]);
    fx.finish();
}

#[test]
fn continuation_without_start_is_1002() {
    let mut fx = Fixture::new(cfg());
    fx.violation("lone final continuation", &frame(true, OP_CONT, b"x"), 1002);
    fx.violation("lone continuation", &frame(false, OP_CONT, b"x"), 1002);
    // After a complete message (which is delivered and echoed).
    let (mut c, id) = fx.open();
    let bytes = [frame(true, OP_TEXT, b"complete"), frame(true, OP_CONT, b"x")].concat();
    c.write(&bytes);
    c.expect_message(OP_TEXT, b"complete");
    c.expect_close(Some(1002));
    assert_eq!(fx.rec.wait_close(id).0, 1002);
    fx.finish();
}

#[test]
fn new_data_frame_inside_fragmented_message_is_1002() {
    let mut fx = Fixture::new(cfg());
    let bytes = [frame(false, OP_TEXT, b"part 1"), frame(true, OP_TEXT, b"new")].concat();
    fx.violation("text inside text", &bytes, 1002);
    let bytes = [frame(false, OP_BINARY, b"part 1"), frame(false, OP_TEXT, b"new")].concat();
    fx.violation("text inside binary", &bytes, 1002);
    let bytes =
        [frame(false, OP_TEXT, b"part 1"), frame(false, OP_CONT, b"part 2"), frame(true, OP_BINARY, b"new")].concat();
    fx.violation("binary inside text", &bytes, 1002);
    fx.finish();
}

#[test]
fn invalid_utf8_text_is_1007() {
    let mut fx = Fixture::new(cfg());
    let cases: [(&str, &[u8]); 7] = [
        ("0xff", b"\xff"),
        ("lone continuation", b"ab\x80"),
        ("overlong /", b"\xc0\xaf"),
        ("surrogate", b"\xed\xa0\x80"),
        ("above U+10FFFF", b"\xf4\x90\x80\x80"),
        ("truncated at end", b"ok\xe2\x82"),
        (
            "valid then invalid",
            "κόσμε".as_bytes().iter().chain(b"\xce\xbc\xe0\x80").copied().collect::<Vec<u8>>().leak(),
        ),
    ];
    for (name, bytes) in cases {
        fx.violation(name, &frame(true, OP_TEXT, bytes), 1007);
    }
    fx.finish();
}

#[test]
fn invalid_utf8_across_fragments_is_1007() {
    let mut fx = Fixture::new(cfg());
    let bytes = [frame(false, OP_TEXT, b"hello "), frame(true, OP_CONT, b"\xff")].concat();
    fx.violation("bad byte in the last fragment", &bytes, 1007);
    let bytes = [frame(false, OP_TEXT, b"\xff"), frame(true, OP_CONT, b"world")].concat();
    fx.violation("bad byte in the first fragment", &bytes, 1007);
    let bytes = [frame(false, OP_TEXT, b"euro \xe2"), frame(true, OP_CONT, b"\x82")].concat();
    fx.violation("code point cut short by the end of the message", &bytes, 1007);
    let bytes =
        [frame(false, OP_TEXT, b"\xed"), frame(false, OP_CONT, b"\xa0"), frame(true, OP_CONT, b"\x80")].concat();
    fx.violation("surrogate split over three fragments", &bytes, 1007);
    fx.finish();
}

#[test]
fn code_point_split_across_fragments_is_accepted() {
    let fx = Fixture::new(cfg());
    let (mut c, id) = fx.open();
    // "a€ b": € = E2 82 AC cut after its first byte.
    c.send(false, OP_TEXT, b"a\xe2");
    c.send(false, OP_CONT, b"\x82");
    c.send(true, OP_CONT, b"\xac b");
    c.expect_message(OP_TEXT, "a€ b".as_bytes());
    // 😀 = F0 9F 98 80, one byte per fragment.
    let emoji = "😀".as_bytes();
    c.send(false, OP_TEXT, &emoji[..1]);
    for (i, b) in emoji[1..].iter().enumerate() {
        c.send(i == 2, OP_CONT, &[*b]);
    }
    c.expect_message(OP_TEXT, emoji);
    let msgs = fx.rec.messages_of(id);
    assert_eq!(
        msgs,
        vec![Ev::Message(id, "a€ b".as_bytes().to_vec(), Kind::Text), Ev::Message(id, emoji.to_vec(), Kind::Text),]
    );
    c.write(&close_frame(1000, b""));
    c.expect_close(Some(1000));
    fx.finish();
}

#[test]
fn message_over_max_message_size_is_1009() {
    let config = Config { max_message_size: 1000, max_frame_size: 4096, ..cfg() };
    let mut fx = Fixture::new(config);
    // At the limit: fine, both as one frame and in fragments.
    let (mut c, _) = fx.open();
    c.send(true, OP_BINARY, &[1u8; 1000]);
    c.expect_message(OP_BINARY, &[1u8; 1000]);
    c.send(false, OP_TEXT, &[b'a'; 600]);
    c.send(true, OP_CONT, &[b'a'; 400]);
    c.expect_message(OP_TEXT, &[b'a'; 1000]);
    // One byte over.
    fx.violation("single frame of 1001", &frame(true, OP_BINARY, &[1u8; 1001]), 1009);
    fx.violation("single text frame of 1001", &frame(true, OP_TEXT, &[b'a'; 1001]), 1009);
    let mut bytes = frame(false, OP_TEXT, &[b'a'; 600]);
    bytes.extend(frame(true, OP_CONT, &[b'a'; 401]));
    fx.violation("fragments 600 + 401", &bytes, 1009);
    // Over the limit before the message ends: no need to wait for FIN.
    let mut bytes = frame(false, OP_BINARY, &[2u8; 600]);
    bytes.extend(frame(false, OP_CONT, &[2u8; 600]));
    fx.violation("unfinished fragments 600 + 600", &bytes, 1009);
    // Many empty and small fragments adding up.
    let mut bytes = frame(false, OP_BINARY, b"");
    for _ in 0..11 {
        bytes.extend(frame(false, OP_CONT, &[3u8; 100]));
    }
    fx.violation("eleven fragments of 100", &bytes, 1009);
    fx.finish();
}

#[test]
fn frame_over_max_frame_size_is_1009_from_its_header() {
    let config = Config { max_frame_size: 1000, max_message_size: 1 << 20, ..cfg() };
    let mut fx = Fixture::new(config);
    let (mut c, _) = fx.open();
    c.send(true, OP_BINARY, &[5u8; 1000]);
    c.expect_message(OP_BINARY, &[5u8; 1000]);
    // Just the header of a 1001-byte frame: the payload is never sent.
    let mut header = vec![0x82, 0x80 | 126];
    header.extend_from_slice(&1001u16.to_be_bytes());
    header.extend_from_slice(&MASK);
    fx.violation("16-bit length 1001, header only", &header, 1009);
    // A 64-bit length of 1 TiB, header only.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&MASK);
    fx.violation("64-bit length 2^40, header only", &header, 1009);
    // A continuation frame over the limit.
    let mut bytes = frame(false, OP_TEXT, b"start");
    bytes.extend_from_slice(&[0x80, 0x80 | 126]);
    bytes.extend_from_slice(&5000u16.to_be_bytes());
    bytes.extend_from_slice(&MASK);
    fx.violation("continuation header of 5000", &bytes, 1009);
    fx.finish();
}

/// A client that writes a whole oversized frame before it reads anything
/// (Autobahn's 9.1.6 and 9.2.6 against the default limits) must still get
/// the 1009: after its close frame the server drains the client's input
/// (up to the 2 s linger) instead of closing the socket on unread bytes,
/// whose TCP reset would make the client's kernel drop the close frame
/// unread. 32 MiB is more than loopback's socket buffers hold.
#[test]
fn refused_frame_sent_in_full_before_reading_still_gets_1009() {
    let config = Config { max_frame_size: 1000, ..cfg() };
    let fx = Fixture::new(config);
    let (mut c, id) = fx.open();
    let len = 32usize << 20;
    let mut bytes = vec![0x82, 0x80 | 127];
    bytes.extend_from_slice(&(len as u64).to_be_bytes());
    bytes.extend_from_slice(&MASK);
    bytes.resize(bytes.len() + len, 0);
    let written = c.try_write(&bytes);
    assert!(written.is_ok(), "the server reset the connection while the client was still sending: {written:?}");
    c.expect_close_for("32 MiB frame written in full before reading", Some(1009));
    assert_eq!(fx.rec.wait_close(id).0, 1009);
    fx.finish();
}

#[test]
fn length_with_most_significant_bit_set_is_1002() {
    let mut fx = Fixture::new(cfg());
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 63 | 5).to_be_bytes());
    header.extend_from_slice(&MASK);
    fx.violation("64-bit length with the MSB set", &header, 1002);
    fx.finish();
}

#[test]
fn close_with_one_byte_payload_is_1002() {
    let mut fx = Fixture::new(cfg());
    fx.violation("close payload [0x03]", &frame(true, OP_CLOSE, &[0x03]), 1002);
    fx.finish();
}

#[test]
fn close_with_forbidden_code_is_1002() {
    let mut fx = Fixture::new(cfg());
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
        fx.violation(&format!("close code {code}"), &close_frame(code, b""), 1002);
    }
    fx.finish();
}

#[test]
fn close_reason_not_utf8_is_1007() {
    let mut fx = Fixture::new(cfg());
    fx.violation("reason 0xff 0xfe", &close_frame(1000, b"\xff\xfe"), 1007);
    fx.violation("reason with a surrogate", &close_frame(1000, b"ok \xed\xa0\x80"), 1007);
    fx.violation("reason cut in a code point", &close_frame(3000, b"euro \xe2\x82"), 1007);
    fx.finish();
}

#[test]
fn valid_close_is_echoed_and_reported() {
    let fx = Fixture::new(cfg());
    let cases: [(Option<u16>, &str); 7] = [
        (Some(1000), "bye"),
        (Some(1001), ""),
        (Some(1003), "x"),
        (Some(1011), "oops"),
        (Some(3000), "app-defined"),
        (Some(4999), "κόσμε"),
        (None, ""),
    ];
    for (code, reason) in cases {
        let (mut c, id) = fx.open();
        c.roundtrip("before close");
        match code {
            Some(code) => c.write(&close_frame(code, reason.as_bytes())),
            None => c.send(true, OP_CLOSE, b""),
        }
        let f = c.expect_close_for(&format!("close {code:?} {reason:?}"), code);
        if code.is_none() {
            assert!(f.payload.is_empty(), "empty close must be echoed empty: {f:?}");
        }
        let (got, got_reason) = fx.rec.wait_close(id);
        assert_eq!(got, code.unwrap_or(1005), "on_close code for {code:?}");
        assert_eq!(got_reason, reason, "on_close reason for {code:?}");
        assert!(!fx.rec.events_of(id).iter().any(|e| matches!(e, Ev::Error(..))), "a clean close reported an error");
    }
    fx.finish();
}

#[test]
fn data_after_close_is_ignored() {
    let fx = Fixture::new(cfg());
    let (mut c, id) = fx.open();
    let mut bytes = close_frame(1000, b"");
    bytes.extend(frame(true, OP_TEXT, b"after close"));
    bytes.extend(frame(true, OP_PING, b"after close"));
    c.write(&bytes);
    c.expect_close(Some(1000));
    assert_eq!(fx.rec.wait_close(id).0, 1000);
    assert!(fx.rec.messages_of(id).is_empty());
    fx.finish();
}

// ---------------------------------------------------------------------------
// Fragmentation, lengths, pipelining
// ---------------------------------------------------------------------------

#[test]
fn fragmented_message_with_pings_between_fragments() {
    let fx = Fixture::new(cfg());
    let (mut c, id) = fx.open();
    c.send(false, OP_TEXT, b"Hel");
    c.send(true, OP_PING, b"ping-1");
    c.send(false, OP_CONT, b"lo ");
    c.send(true, OP_PING, b"ping-2");
    c.send(true, OP_PONG, b"unsolicited pong");
    c.send(false, OP_CONT, b"");
    c.send(true, OP_PING, b"");
    c.send(true, OP_CONT, b"world");
    c.expect_message(OP_PONG, b"ping-1");
    c.expect_message(OP_PONG, b"ping-2");
    c.expect_message(OP_PONG, b"");
    c.expect_message(OP_TEXT, b"Hello world");
    // Binary, in one write, with a ping between.
    let bytes =
        [frame(false, OP_BINARY, &[1, 2]), frame(true, OP_PING, b"in between"), frame(true, OP_CONT, &[3])].concat();
    c.write(&bytes);
    c.expect_message(OP_PONG, b"in between");
    c.expect_message(OP_BINARY, &[1, 2, 3]);
    let msgs = fx.rec.messages_of(id);
    assert_eq!(
        msgs,
        vec![Ev::Message(id, b"Hello world".to_vec(), Kind::Text), Ev::Message(id, vec![1, 2, 3], Kind::Binary),],
        "each message delivered exactly once"
    );
    fx.finish();
}

#[test]
fn zero_length_frames_and_messages() {
    let fx = Fixture::new(cfg());
    let (mut c, id) = fx.open();
    c.send(true, OP_TEXT, b"");
    c.expect_message(OP_TEXT, b"");
    c.send(true, OP_BINARY, b"");
    c.expect_message(OP_BINARY, b"");
    c.send(false, OP_TEXT, b"");
    c.send(false, OP_CONT, b"");
    c.send(true, OP_CONT, b"");
    c.expect_message(OP_TEXT, b"");
    c.send(false, OP_BINARY, b"");
    c.send(true, OP_CONT, b"x");
    c.expect_message(OP_BINARY, b"x");
    c.send(true, OP_PING, b"");
    c.expect_message(OP_PONG, b"");
    let msgs = fx.rec.messages_of(id);
    assert_eq!(
        msgs,
        vec![
            Ev::Message(id, vec![], Kind::Text),
            Ev::Message(id, vec![], Kind::Binary),
            Ev::Message(id, vec![], Kind::Text),
            Ev::Message(id, b"x".to_vec(), Kind::Binary),
        ]
    );
    fx.finish();
}

#[test]
fn length_boundaries_both_directions_use_minimal_encoding() {
    let fx = Fixture::new(cfg());
    let (mut c, _) = fx.open();
    for n in [0usize, 1, 125, 126, 127, 65535, 65536, 65537, 200_000] {
        let payload: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
        c.send(true, OP_BINARY, &payload);
        let f = c.read_frame();
        assert!(f.fin && f.opcode == OP_BINARY && !f.masked && f.rsv == 0, "n={n}: {:?}", (f.fin, f.opcode, f.masked));
        assert_eq!(f.payload.len(), n);
        assert!(f.payload == payload, "n={n}: payload differs");
        let want_ext = if n < 126 {
            0
        } else if n <= 65535 {
            2
        } else {
            8
        };
        assert_eq!(f.ext_len, want_ext, "n={n}: non-minimal length encoding");
        // The same sizes as text.
        let text = "é".repeat(n / 2) + if n % 2 == 1 { "x" } else { "" };
        assert_eq!(text.len(), n);
        c.send(true, OP_TEXT, text.as_bytes());
        let f = c.read_frame();
        assert_eq!((f.opcode, f.ext_len, f.payload.len()), (OP_TEXT, want_ext, n));
        assert!(f.payload == text.as_bytes());
    }
    // Pings at the control-frame limit.
    c.send(true, OP_PING, &[1u8; 125]);
    let f = c.read_frame();
    assert_eq!((f.opcode, f.ext_len, f.payload.len()), (OP_PONG, 0, 125));
    fx.finish();
}

#[test]
fn pipelined_frames_in_one_write() {
    let fx = Fixture::new(cfg());
    let (mut c, id) = fx.open();
    let mut bytes = Vec::new();
    for i in 0..300 {
        if i == 150 {
            bytes.extend(frame(true, OP_PING, b"mid"));
        }
        if i % 3 == 0 {
            // A fragmented message every third.
            let s = format!("frag {i}");
            let (a, b) = s.as_bytes().split_at(3);
            bytes.extend(frame(false, OP_TEXT, a));
            bytes.extend(frame(true, OP_CONT, b));
        } else {
            bytes.extend(frame(true, OP_TEXT, format!("msg {i}").as_bytes()));
        }
    }
    bytes.extend(frame(true, OP_BINARY, &vec![9u8; 100_000]));
    bytes.extend(close_frame(1000, b"done"));
    c.write(&bytes);
    for i in 0..300 {
        if i == 150 {
            c.expect_message(OP_PONG, b"mid");
        }
        let s = if i % 3 == 0 { format!("frag {i}") } else { format!("msg {i}") };
        c.expect_message(OP_TEXT, s.as_bytes());
    }
    c.expect_message(OP_BINARY, &vec![9u8; 100_000]);
    c.expect_close(Some(1000));
    assert_eq!(fx.rec.wait_close(id), (1000, "done".to_string()));
    assert_eq!(fx.rec.messages_of(id).len(), 301);
    fx.finish();
}

#[test]
fn frames_split_byte_by_byte() {
    let fx = Fixture::new(cfg());
    let (mut c, _) = fx.open();
    let mut bytes = frame(true, OP_TEXT, b"hello");
    bytes.extend(frame(false, OP_BINARY, &[0xAB; 200]));
    bytes.extend(frame(true, OP_PING, b"pp"));
    bytes.extend(frame(true, OP_CONT, &[0xCD; 3]));
    for b in &bytes {
        c.write(&[*b]);
        std::thread::sleep(Duration::from_micros(700));
    }
    c.expect_message(OP_TEXT, b"hello");
    c.expect_message(OP_PONG, b"pp");
    let mut want = vec![0xAB; 200];
    want.extend_from_slice(&[0xCD; 3]);
    c.expect_message(OP_BINARY, &want);
    // A 64-bit-length frame in uneven pieces, the header cut everywhere.
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    let bytes = frame(true, OP_BINARY, &big);
    let mut pos = 0;
    for step in [1usize, 1, 1, 2, 3, 1, 5, 1, 4093, 1, 65_536, 7].iter().cycle() {
        if pos >= bytes.len() {
            break;
        }
        let end = (pos + step).min(bytes.len());
        c.write(&bytes[pos..end]);
        pos = end;
        std::thread::sleep(Duration::from_micros(300));
    }
    c.expect_message(OP_BINARY, &big);
    fx.finish();
}

// ---------------------------------------------------------------------------
// Keep-alive
// ---------------------------------------------------------------------------

#[test]
fn server_pings_an_idle_client() {
    let config = Config { ping_interval: Duration::from_millis(100), idle_timeout: Duration::ZERO, ..cfg() };
    let (server, rec, port) = start(config, true);
    let mut c = RawClient::open(port, "/");
    c.set_read_timeout(Duration::from_secs(2));
    let t0 = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        let f = c.read_frame();
        assert_eq!(f.opcode, OP_PING, "unexpected frame {f:?}");
        assert!(f.fin && !f.masked && f.rsv == 0 && f.payload.len() <= 125);
        pings += 1;
        c.send(true, OP_PONG, &f.payload);
    }
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(200), "pings came too fast: 3 in {took:?}");
    assert!(took < Duration::from_millis(1500), "pings came too slowly: 3 in {took:?}");
    c.roundtrip("still open");
    assert!(rec.closes().is_empty());
    server.close(Duration::from_millis(200));
}

#[test]
fn idle_client_is_dropped_and_responsive_client_stays() {
    let config =
        Config { ping_interval: Duration::from_millis(100), idle_timeout: Duration::from_millis(300), ..cfg() };
    let (server, rec, port) = start(config, true);
    let mut silent = RawClient::open(port, "/silent");
    let t0 = Instant::now();
    let silent_id = rec.nth_open(0);
    let mut alive = RawClient::open(port, "/alive");
    let alive_id = rec.nth_open(1);
    alive.set_read_timeout(Duration::from_millis(20));
    let mut answered = 0;
    let mut silent_closed_at = None;
    while t0.elapsed() < Duration::from_millis(1200) {
        match alive.try_read_frame() {
            Ok(f) => {
                assert_eq!(f.opcode, OP_PING, "{f:?}");
                alive.send(true, OP_PONG, &f.payload);
                answered += 1;
            }
            Err(End::TimedOut) => {}
            Err(e) => panic!("the responsive client was dropped: {e:?}"),
        }
        if silent_closed_at.is_none() && rec.closes().iter().any(|c| c.0 == silent_id) {
            silent_closed_at = Some(t0.elapsed());
        }
    }
    assert!(answered >= 3, "the server pinged the responsive client {answered} times");
    let at = silent_closed_at.expect("the silent client was not dropped");
    assert!(at >= Duration::from_millis(250), "dropped too early: {at:?}");
    assert!(at <= Duration::from_millis(1000), "dropped too late: {at:?}");
    let mine = rec.events_of(silent_id);
    assert!(
        matches!(&mine[..], [Ev::Open(..), Ev::Error(_, e), Ev::Close(_, 1006, _)] if e.contains("timeout")),
        "silent client events: {mine:?}"
    );
    // The silent client's socket got pings (no pongs), then the end.
    silent.set_read_timeout(Duration::from_secs(2));
    loop {
        match silent.try_read_frame() {
            Ok(f) => assert_eq!(f.opcode, OP_PING, "{f:?}"),
            Err(End::Closed) => break,
            Err(e) => panic!("silent client's connection not ended: {e:?}"),
        }
    }
    alive.set_read_timeout(Duration::from_secs(5));
    alive.text("still here");
    loop {
        let f = alive.read_frame();
        if f.opcode == OP_TEXT {
            assert_eq!(f.payload, b"still here");
            break;
        }
        assert_eq!(f.opcode, OP_PING);
    }
    assert!(!rec.closes().iter().any(|c| c.0 == alive_id));
    server.close(Duration::from_millis(200));
    check_event_order(&rec.snapshot());
}

#[test]
fn handshake_split_byte_by_byte() {
    let (server, _rec, port) = start(cfg(), true);
    let mut c = RawClient::connect(port);
    for b in upgrade_request("/slowly", "").as_bytes() {
        c.write(&[*b]);
        std::thread::sleep(Duration::from_micros(300));
    }
    c.expect_upgrade();
    c.roundtrip("ok");
    server.close(Duration::from_millis(200));
}

/// A client that sends pings and never reads the pongs must not make the
/// server queue without bound: the send queue limits (or the server
/// stopping reading, or closing the connection) must cap what is queued.
#[test]
fn ping_flood_from_a_client_that_does_not_read_is_bounded() {
    const HARD: usize = 64 << 10;
    let config = Config { send_queue_limit: 16 << 10, send_queue_hard_limit: HARD, ..cfg() };
    let (server, rec, port) = start(config, true);
    let mut c = RawClient::open(port, "/flood");
    let id = rec.nth_open(0);
    let mut chunk = Vec::new();
    for _ in 0..1000 {
        chunk.extend(frame(true, OP_PING, &[1u8; 125]));
    }
    c.stream.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut sent = 0usize;
    let mut worst = 0usize;
    for _ in 0..300 {
        if c.try_write(&chunk).is_err() {
            break; // the server stopped reading, or closed: both fine
        }
        sent += chunk.len();
        if let Ok(q) = server.queued_bytes(id) {
            worst = worst.max(q);
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    if let Ok(q) = server.queued_bytes(id) {
        worst = worst.max(q);
    }
    assert!(
        worst <= HARD + (64 << 10),
        "after {} MB of pings, the server queued {worst} bytes of pongs for a client that does not read \
         (send_queue_hard_limit {HARD})",
        sent >> 20
    );
    server.close(Duration::from_millis(200));
}

/// Bad UTF-8 in the first fragment of a text message fails the connection
/// at once (1007), without waiting for fragments that may never come; a
/// sequence merely cut by a fragment boundary does not.
#[test]
fn invalid_utf8_in_a_fragment_fails_fast() {
    let (server, _rec, port) = start(cfg(), true);
    let mut c = RawClient::open(port, "/fast");
    c.send(false, OP_TEXT, b"ok so far \xff");
    c.expect_close(Some(1007));
    let mut d = RawClient::open(port, "/cut");
    d.send(false, OP_TEXT, b"euro \xe2\x82");
    d.send(false, OP_CONT, b"\xac and more");
    d.send(true, OP_CONT, b"!");
    d.expect_message(OP_TEXT, "euro \u{20ac} and more!".as_bytes());
    let mut e = RawClient::open(port, "/truncated");
    e.send(false, OP_TEXT, b"ends mid sequence \xe2\x82");
    e.send(true, OP_CONT, b"");
    e.expect_close(Some(1007));
    server.close(Duration::from_millis(200));
}
