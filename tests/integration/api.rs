//! The Rust API's guarantees, checked with a real client (tokio-tungstenite)
//! over loopback: connection ids, event order, send/broadcast/disconnect
//! from other threads and from callbacks, error values, backpressure, and
//! the graceful close.
//!
//! Tests are plain `#[test]`s: clients run on their own tokio runtime so the
//! test thread can make blocking server calls (`close`) while they work.
use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsserver::{
    Config, ConnId, Error, Handler, Kind, LogLevel, OverflowPolicy, Request, SendStatus, Server, ServerHandle,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type RawWs = WebSocketStream<TcpStream>;

/// A runtime for the clients, separate from the test thread.
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn cfg() -> Config {
    Config { close_timeout: Duration::from_secs(2), ..Config::default() }
}

async fn connect(port: u16, path: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{port}{path}");
    let (ws, _) = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timed out")
        .expect("connect failed");
    ws
}

/// Connects `n` clients one after another, to `{prefix}{k}`, on a fresh
/// server; returns them with their connection ids, in the same order.
fn connect_several(
    rt: &tokio::runtime::Runtime,
    rec: &Recorder,
    port: u16,
    n: usize,
    prefix: &str,
) -> (Vec<Ws>, Vec<ConnId>) {
    let mut clients = Vec::new();
    for k in 0..n {
        clients.push(rt.block_on(connect(port, &format!("{prefix}{k}"))));
    }
    let ids = (0..n).map(|k| rec.nth_open(k)).collect();
    (clients, ids)
}

/// Connects with a small receive buffer, so that a client that does not
/// read fills up quickly.
async fn connect_small_rcvbuf(port: u16) -> RawWs {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(8 * 1024).unwrap();
    let stream = sock.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}/slow"), stream),
    )
    .await
    .expect("handshake timed out")
    .expect("handshake failed");
    ws
}

/// Reads until the server's close frame; returns the messages before it
/// and the close frame. Lets the client answer the close.
async fn read_until_close<S>(ws: &mut S) -> (Vec<Message>, Option<CloseFrame>)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut got = Vec::new();
    loop {
        match next_msg(ws).await {
            Message::Close(f) => {
                // Drive the client until it has answered and the stream ends.
                let _ =
                    tokio::time::timeout(Duration::from_secs(3), async { while ws.next().await.is_some() {} }).await;
                return (got, f);
            }
            m => got.push(m),
        }
    }
}

fn close_of(f: &Option<CloseFrame>) -> (u16, String) {
    let f = f.as_ref().expect("close frame without a code");
    (u16::from(f.code), f.reason.to_string())
}

fn text(m: &Message) -> String {
    match m {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Connection ids and event order
// ---------------------------------------------------------------------------

/// Runs `n` clients at once; each sends one message, gets its echo, and
/// leaves in one of three ways (close handshake, TCP drop, server
/// disconnect on request).
fn burst(rt: &tokio::runtime::Runtime, port: u16, n: usize, round: usize) {
    rt.block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|k| {
                tokio::spawn(async move {
                    let mut ws = connect(port, &format!("/r{round}/c{k}")).await;
                    let msg = format!("hello {round}/{k}");
                    ws.send(Message::text(msg.clone())).await.unwrap();
                    assert_eq!(text(&next_msg(&mut ws).await), msg);
                    match k % 3 {
                        0 => {
                            ws.close(None).await.unwrap();
                            while ws.next().await.is_some() {}
                        }
                        1 => drop(ws),
                        _ => {
                            ws.send(Message::text("kick me")).await.unwrap();
                            let (_, f) = read_until_close(&mut ws).await;
                            assert_eq!(close_of(&f).0, 4000);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("client task");
        }
    });
}

/// Echoes, and disconnects (4000) a client that says "kick me".
struct Kicker(Recorder);
impl Handler for Kicker {
    fn on_open(&self, s: &ServerHandle, c: ConnId, r: &Request) -> Result<(), u16> {
        self.0.on_open(s, c, r)
    }
    fn on_message(&self, s: &ServerHandle, c: ConnId, d: &[u8], k: Kind) {
        self.0.on_message(s, c, d, k); // recorded, not echoed (echo=false)
        if d == b"kick me" {
            s.disconnect(c, 4000, "kicked").unwrap();
        } else {
            s.send(c, d, k).unwrap();
        }
    }
    fn on_close(&self, s: &ServerHandle, c: ConnId, code: u16, r: &str) {
        self.0.on_close(s, c, code, r)
    }
    fn on_error(&self, s: &ServerHandle, c: ConnId, e: &Error) {
        self.0.on_error(s, c, e)
    }
}

fn ids_and_order(threads: usize) {
    let h = Arc::new(Kicker(Recorder::default()));
    let (server, port) = start_with(Config { threads, ..cfg() }, h.clone());
    let rec = &h.0;
    let rt = rt();
    let mut seen: Vec<ConnId> = Vec::new();
    for round in 0..4 {
        burst(&rt, port, 50, round);
        let want = 50 * (round + 1);
        assert!(
            rec.wait_until(Duration::from_secs(5), |ev| ev.iter().filter(|e| matches!(e, Ev::Close(..))).count()
                >= want),
            "round {round}: not every connection reported its close"
        );
        let opened = rec.opened();
        assert_eq!(opened.len(), want);
        let this_round = &opened[seen.len()..];
        let max_before = seen.iter().copied().max().unwrap_or(0);
        assert!(this_round.iter().all(|id| *id > max_before), "round {round}: an id was reused: {this_round:?}");
        seen.extend_from_slice(this_round);
    }
    assert!(seen.iter().all(|id| *id != 0), "id 0 handed out");
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "duplicate ids");
    if threads == 1 {
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "ids not increasing in open order: {seen:?}");
    }
    server.close(Duration::from_secs(1));
    let events = rec.snapshot();
    check_event_order(&events);
    // Each connection got exactly its own messages, between open and close.
    for id in &seen {
        let mine = rec.events_of(*id);
        let path = match &mine[0] {
            Ev::Open(_, p) => p.clone(),
            _ => unreachable!(),
        };
        let (round, k) = path.trim_start_matches("/r").split_once("/c").unwrap();
        let msgs: Vec<Vec<u8>> =
            mine.iter().filter_map(|e| if let Ev::Message(_, d, _) = e { Some(d.clone()) } else { None }).collect();
        assert_eq!(msgs[0], format!("hello {round}/{k}").into_bytes(), "conn {id}: {mine:?}");
        let k: usize = k.parse().unwrap();
        let (code, reason) = match mine.last().unwrap() {
            Ev::Close(_, c, r) => (*c, r.clone()),
            _ => unreachable!(),
        };
        match k % 3 {
            0 => assert_eq!(code, 1005, "conn {id}: client close without code"),
            1 => assert_eq!(code, 1006, "conn {id}: TCP dropped"),
            _ => assert_eq!((code, reason.as_str()), (4000, "kicked"), "conn {id}: kicked"),
        }
    }
}

#[test]
fn ids_unique_increasing_never_reused_and_open_first_close_last() {
    ids_and_order(1);
}

#[test]
fn ids_unique_and_event_order_with_two_io_threads() {
    ids_and_order(2);
}

// ---------------------------------------------------------------------------
// send / broadcast / disconnect from other threads
// ---------------------------------------------------------------------------

#[test]
fn send_broadcast_disconnect_from_other_threads_while_traffic_flows() {
    const N: usize = 200;
    let (server, rec, port) = start(cfg(), true);
    let rt = rt();
    let (clients, ids) = connect_several(&rt, &rec, port, 4, "/c");
    // Clients: send N messages while reading everything until the close.
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(k, ws)| {
            rt.spawn(async move {
                let (mut sink, mut stream) = ws.split();
                let writer = tokio::spawn(async move {
                    for i in 0..N {
                        sink.send(Message::text(format!("c{k}-{i}"))).await.unwrap();
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    sink
                });
                let (msgs, close) = read_until_close(&mut stream).await;
                let _sink = writer.await.unwrap();
                (msgs, close)
            })
        })
        .collect();
    let h = server.handle();
    let pusher = {
        let (h, ids) = (h.clone(), ids.clone());
        std::thread::spawn(move || {
            for i in 0..N {
                for id in &ids {
                    let st = h.send(*id, format!("push-{i}").as_bytes(), Kind::Text).expect("send from thread");
                    assert!(matches!(st, SendStatus::Queued | SendStatus::Backpressure));
                }
            }
        })
    };
    let broadcaster = {
        let h = h.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                assert_eq!(h.broadcast(format!("bcast-{i}").as_bytes(), Kind::Text, None).expect("broadcast"), 4);
            }
        })
    };
    pusher.join().unwrap();
    broadcaster.join().unwrap();
    // Every client message arrived, and its echo is queued (the recorder
    // records a message before echoing it, so wait for the echoes too).
    wait("all client messages", || rec.snapshot().iter().filter(|e| matches!(e, Ev::Message(..))).count() == 4 * N);
    wait("all echoes queued", || rec.echoed.load(Ordering::SeqCst) == 4 * N);
    let disconnecter = {
        let (h, ids) = (h.clone(), ids.clone());
        std::thread::spawn(move || {
            for id in &ids {
                h.disconnect(*id, 4001, "bye from a thread").unwrap();
            }
        })
    };
    disconnecter.join().unwrap();
    for (k, t) in tasks.into_iter().enumerate() {
        let (msgs, close) = rt.block_on(t).unwrap();
        assert_eq!(close_of(&close), (4001, "bye from a thread".to_string()), "client {k}");
        let texts: Vec<String> = msgs.iter().map(text).collect();
        assert_eq!(texts.len(), 3 * N, "client {k} got {} messages", texts.len());
        for prefix in [format!("c{k}-"), "push-".to_string(), "bcast-".to_string()] {
            let seq: Vec<usize> =
                texts.iter().filter_map(|t| t.strip_prefix(prefix.as_str())).map(|n| n.parse().unwrap()).collect();
            assert_eq!(seq, (0..N).collect::<Vec<_>>(), "client {k}: {prefix}* out of order or missing");
        }
    }
    for id in &ids {
        assert_eq!(rec.wait_close(*id).0, 4001);
    }
    server.close(Duration::from_secs(1));
    check_event_order(&rec.snapshot());
}

// ---------------------------------------------------------------------------
// Calls from inside callbacks
// ---------------------------------------------------------------------------

/// A handler scripted by the client's messages; records like `Recorder`.
#[derive(Default)]
struct Scripted {
    rec: Recorder,
    /// Result of a send made right after a disconnect, in on_message.
    send_after_disconnect: Mutex<Option<Result<SendStatus, Error>>>,
}

impl Handler for Scripted {
    fn on_open(&self, s: &ServerHandle, c: ConnId, r: &Request) -> Result<(), u16> {
        self.rec.on_open(s, c, r)?;
        s.send(c, format!("welcome {c}").as_bytes(), Kind::Text).unwrap();
        s.send(c, &[1, 2, 3], Kind::Binary).unwrap();
        if r.path() == "/kick-on-open" {
            s.disconnect(c, 4003, "not welcome").unwrap();
        }
        Ok(())
    }
    fn on_message(&self, s: &ServerHandle, c: ConnId, d: &[u8], k: Kind) {
        self.rec.on_message(s, c, d, k);
        let t = std::str::from_utf8(d).unwrap_or("");
        if t == "quit" {
            s.disconnect(c, 4002, "requested").unwrap();
            *self.send_after_disconnect.lock().unwrap() = Some(s.send(c, b"too late", Kind::Text));
        } else if let Some(rest) = t.strip_prefix("others:") {
            s.broadcast(rest.as_bytes(), Kind::Text, Some(c)).unwrap();
        } else if let Some(rest) = t.strip_prefix("all:") {
            s.broadcast(rest.as_bytes(), Kind::Text, None).unwrap();
        } else {
            s.send(c, t.to_uppercase().as_bytes(), Kind::Text).unwrap();
        }
    }
    fn on_close(&self, s: &ServerHandle, c: ConnId, code: u16, r: &str) {
        self.rec.on_close(s, c, code, r)
    }
    fn on_error(&self, s: &ServerHandle, c: ConnId, e: &Error) {
        self.rec.on_error(s, c, e)
    }
}

#[test]
fn callbacks_send_broadcast_and_disconnect() {
    let h = Arc::new(Scripted::default());
    let (server, port) = start_with(cfg(), h.clone());
    let rt = rt();
    rt.block_on(async {
        let mut a = connect(port, "/a").await;
        let id_a = h.rec.nth_open(0);
        assert_eq!(text(&next_msg(&mut a).await), format!("welcome {id_a}"), "on_open sends come first, in order");
        assert_eq!(next_msg(&mut a).await, Message::binary(vec![1u8, 2, 3]));
        let mut b = connect(port, "/b").await;
        let mut c = connect(port, "/c").await;
        for ws in [&mut b, &mut c] {
            next_msg(ws).await;
            next_msg(ws).await;
        }
        a.send(Message::text("abc")).await.unwrap();
        assert_eq!(text(&next_msg(&mut a).await), "ABC");
        a.send(Message::text("others:from a")).await.unwrap();
        a.send(Message::text("all:to everyone")).await.unwrap();
        assert_eq!(text(&next_msg(&mut a).await), "to everyone", "broadcast except the sender reached the sender");
        for ws in [&mut b, &mut c] {
            assert_eq!(text(&next_msg(ws).await), "from a");
            assert_eq!(text(&next_msg(ws).await), "to everyone");
        }
        a.send(Message::text("quit")).await.unwrap();
        let (rest, close) = read_until_close(&mut a).await;
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(close_of(&close), (4002, "requested".to_string()));
        assert_eq!(h.rec.wait_close(id_a).0, 4002);
        assert_eq!(*h.send_after_disconnect.lock().unwrap(), Some(Err(Error::Closed(id_a))));
        for ws in [&mut b, &mut c] {
            ws.send(Message::text("still")).await.unwrap();
            assert_eq!(text(&next_msg(ws).await), "STILL");
        }
    });
    server.close(Duration::from_secs(1));
    check_event_order(&h.rec.snapshot());
}

#[test]
fn disconnect_from_on_open_completes_the_handshake_first() {
    let h = Arc::new(Scripted::default());
    let (server, port) = start_with(cfg(), h.clone());
    let rt = rt();
    rt.block_on(async {
        let url = format!("ws://127.0.0.1:{port}/kick-on-open");
        let r = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)).await.unwrap();
        let (mut ws, _) = r.expect("the handshake must succeed before the close");
        let id = h.rec.nth_open(0);
        assert_eq!(text(&next_msg(&mut ws).await), format!("welcome {id}"));
        assert_eq!(next_msg(&mut ws).await, Message::binary(vec![1u8, 2, 3]));
        let (rest, close) = read_until_close(&mut ws).await;
        assert!(rest.is_empty());
        assert_eq!(close_of(&close), (4003, "not welcome".to_string()));
        assert_eq!(h.rec.wait_close(id).0, 4003);
    });
    server.close(Duration::from_millis(300));
}

// ---------------------------------------------------------------------------
// Error values
// ---------------------------------------------------------------------------

#[test]
fn error_values_of_send_broadcast_disconnect() {
    let (server, rec, port) = start(cfg(), true);
    let h = server.handle();
    for id in [0u64, 1, 12345, u64::MAX] {
        assert_eq!(h.send(id, b"x", Kind::Text), Err(Error::NoSuchConn(id)), "send to {id}");
        assert_eq!(h.disconnect(id, 1000, ""), Err(Error::NoSuchConn(id)), "disconnect {id}");
        assert_eq!(h.queued_bytes(id), Err(Error::NoSuchConn(id)), "queued_bytes {id}");
    }
    let rt = rt();
    let mut ws = rt.block_on(connect(port, "/"));
    let id = rec.nth_open(0);
    // Invalid UTF-8 text, in send and broadcast; the same bytes as binary are fine.
    for bad in [&b"\xff"[..], b"ok\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf"] {
        assert_eq!(h.send(id, bad, Kind::Text), Err(Error::InvalidUtf8));
        assert_eq!(h.broadcast(bad, Kind::Text, None), Err(Error::InvalidUtf8));
    }
    assert_eq!(h.send(id, b"\xff", Kind::Binary), Ok(SendStatus::Queued));
    assert_eq!(rt.block_on(next_msg(&mut ws)), Message::binary(vec![0xffu8]));
    // Close codes an endpoint may not send.
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535] {
        assert_eq!(h.disconnect(id, code, ""), Err(Error::BadCloseCode(code)), "code {code}");
        assert_eq!(h.disconnect(987_654, code, ""), Err(Error::BadCloseCode(code)), "code {code}, unknown id");
    }
    // Reasons: 124 bytes is too long (bytes, not characters).
    assert_eq!(h.disconnect(id, 1000, &"r".repeat(124)), Err(Error::ReasonTooLong(124)));
    assert_eq!(h.disconnect(id, 1000, &"é".repeat(62)), Err(Error::ReasonTooLong(124)));
    // Nothing above closed the connection.
    assert_eq!(h.send(id, b"still open", Kind::Text), Ok(SendStatus::Queued));
    assert_eq!(text(&rt.block_on(next_msg(&mut ws))), "still open");
    // 123 bytes is fine, and the client gets the code and reason.
    let reason = "é".repeat(61) + "x";
    assert_eq!(reason.len(), 123);
    assert_eq!(h.disconnect(id, 4321, &reason), Ok(()));
    // Closing: further calls see Closed.
    assert_eq!(h.send(id, b"late", Kind::Text), Err(Error::Closed(id)));
    assert_eq!(h.disconnect(id, 1000, ""), Err(Error::Closed(id)));
    let (rest, close) = rt.block_on(read_until_close(&mut ws));
    assert!(rest.is_empty());
    assert_eq!(close_of(&close), (4321, reason.clone()));
    assert_eq!(rec.wait_close(id).0, 4321);
    // Closed: the id stays known as closed, never as unknown.
    assert_eq!(h.send(id, b"x", Kind::Text), Err(Error::Closed(id)));
    assert_eq!(h.send(id, b"x", Kind::Binary), Err(Error::Closed(id)));
    assert_eq!(h.disconnect(id, 1000, ""), Err(Error::Closed(id)));
    assert_eq!(h.queued_bytes(id), Err(Error::Closed(id)));
    assert_eq!(h.send(id + 1, b"x", Kind::Text), Err(Error::NoSuchConn(id + 1)));
    // A connection refused by on_open is not sendable either.
    let refused =
        rt.block_on(async { tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/forbidden")).await });
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected HTTP 403, got {other:?}"),
    }
    let refused_id = rec.nth_open(1);
    assert_eq!(h.send(refused_id, b"x", Kind::Text), Err(Error::Closed(refused_id)));
    server.close(Duration::from_millis(300));
}

#[test]
fn broadcast_except_reaches_everyone_but_one_and_counts() {
    let (server, rec, port) = start(cfg(), false);
    let h = server.handle();
    let rt = rt();
    let (mut clients, ids) = connect_several(&rt, &rec, port, 4, "/");
    assert_eq!(h.broadcast(b"not for 2", Kind::Text, Some(ids[2])), Ok(3));
    assert_eq!(h.broadcast(b"for all", Kind::Binary, None), Ok(4));
    assert_eq!(h.broadcast(b"unknown except", Kind::Text, Some(999_999)), Ok(4));
    rt.block_on(async {
        for (k, ws) in clients.iter_mut().enumerate() {
            if k != 2 {
                assert_eq!(text(&next_msg(ws).await), "not for 2");
            }
            assert_eq!(next_msg(ws).await, Message::binary(b"for all".to_vec()), "client {k}");
            assert_eq!(text(&next_msg(ws).await), "unknown except");
        }
    });
    // A closed client no longer counts.
    let mut gone = clients.remove(0);
    rt.block_on(async {
        gone.close(None).await.unwrap();
        while gone.next().await.is_some() {}
    });
    rec.wait_close(ids[0]);
    assert_eq!(h.broadcast(b"three left", Kind::Text, None), Ok(3));
    assert_eq!(h.broadcast(b"two", Kind::Text, Some(ids[1])), Ok(2));
    server.close(Duration::from_millis(300));
}

// ---------------------------------------------------------------------------
// Backpressure
// ---------------------------------------------------------------------------

const SOFT: usize = 64 * 1024;
const HARD: usize = 256 * 1024;
const MSG: usize = 8 * 1024;

fn numbered(i: u32) -> Vec<u8> {
    let mut v = vec![(i % 256) as u8; MSG];
    v[..4].copy_from_slice(&i.to_be_bytes());
    v
}

/// Sends numbered messages to `id` until the hard limit refuses one.
/// Returns (accepted count, saw backpressure, queued bytes at the end).
fn fill(h: &ServerHandle, id: ConnId) -> (u32, bool, usize) {
    let mut saw_backpressure = false;
    let mut last_queued = 0;
    for i in 0..20_000u32 {
        match h.send(id, &numbered(i), Kind::Binary) {
            Ok(SendStatus::Queued) => assert!(!saw_backpressure || h.queued_bytes(id).unwrap() < SOFT),
            Ok(SendStatus::Backpressure) => {
                saw_backpressure = true;
                let q = h.queued_bytes(id).unwrap();
                assert!(q <= HARD, "queued {q} over the hard limit");
                last_queued = last_queued.max(q);
            }
            Err(Error::Dropped(d)) => {
                assert_eq!(d, id);
                let queued = h.queued_bytes(id).unwrap();
                return (i, saw_backpressure, queued);
            }
            Err(e) => panic!("send {i}: {e}"),
        }
        if i % 64 == 63 {
            // Let the connection flush into the socket.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    panic!("the hard limit never refused a message (queued {last_queued})");
}

#[test]
fn backpressure_then_dropped_then_one_drain() {
    let config = Config { send_queue_limit: SOFT, send_queue_hard_limit: HARD, ..cfg() };
    let (server, rec, port) = start(config, false);
    let h = server.handle();
    let rt = rt();
    let mut ws = rt.block_on(connect_small_rcvbuf(port));
    let id = rec.nth_open(0);
    let (sent, saw_backpressure, queued) = fill(&h, id);
    assert!(saw_backpressure, "no Backpressure before Dropped");
    assert!(queued > SOFT && queued <= HARD, "queued_bytes {queued} after the hard limit");
    assert!(queued + MSG + 4 > HARD, "Dropped while {queued} + {MSG} fits under {HARD}");
    // Still refused, still open, queue unchanged.
    assert_eq!(h.send(id, &numbered(sent), Kind::Binary), Err(Error::Dropped(id)));
    assert!(h.queued_bytes(id).unwrap() <= HARD);
    assert!(rec.closes().is_empty(), "the Drop policy closed the connection");
    let drains_before = rec.snapshot().iter().filter(|e| matches!(e, Ev::Drain(_))).count();
    // The client reads: every accepted message arrives, in order, once.
    rt.block_on(async {
        for i in 0..sent {
            match next_msg(&mut ws).await {
                Message::Binary(b) => assert!(b[..] == numbered(i)[..], "message {i} differs"),
                other => panic!("message {i}: {other:?}"),
            }
        }
    });
    assert!(
        rec.wait_until(Duration::from_secs(5), |ev| ev.iter().filter(|e| matches!(e, Ev::Drain(_))).count()
            > drains_before),
        "on_drain never fired"
    );
    std::thread::sleep(Duration::from_millis(100));
    let drains: Vec<Ev> =
        rec.snapshot().into_iter().filter(|e| matches!(e, Ev::Drain(_))).skip(drains_before).collect();
    assert_eq!(drains, vec![Ev::Drain(id)], "on_drain must fire exactly once");
    assert_eq!(h.queued_bytes(id), Ok(0));
    // Sending resumes.
    assert_eq!(h.send(id, b"after drain", Kind::Text), Ok(SendStatus::Queued));
    assert_eq!(text(&rt.block_on(next_msg(&mut ws))), "after drain");
    server.close(Duration::from_millis(300));
    check_event_order(&rec.snapshot());
}

/// Sends from a thread that is not the connection's find the queue empty
/// and write the frame themselves; a frame the socket takes only in part
/// is finished by the connection's task. Either way every byte goes out
/// once, in order, and is counted once in `bytes_out`.
#[test]
fn sends_from_a_host_thread_arrive_in_order_and_are_counted_once() {
    const N: u32 = 400;
    let size = |i: u32| [1, 125, 126, 5_000, 65_536, 200_000][i as usize % 6];
    let frame_len = |n: usize| {
        n + if n < 126 {
            2
        } else if n < 65_536 {
            4
        } else {
            10
        }
    };
    let config = Config { send_queue_limit: 1 << 20, send_queue_hard_limit: 4 << 20, ..cfg() };
    let (server, rec, port) = start(config, false);
    let h = server.handle();
    let rt = rt();
    let mut ws = rt.block_on(connect_small_rcvbuf(port));
    let id = rec.nth_open(0);
    // The 101 is out once nothing is queued.
    wait("handshake answer written", || h.queued_bytes(id) == Ok(0));
    let before = h.stats().bytes_out;
    let sender = {
        let h = h.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                let mut msg = vec![(i % 251) as u8; size(i)];
                msg[0] = i as u8;
                // Queued, or backpressure while the slow client catches up.
                while let Err(e) = h.send(id, &msg, Kind::Binary) {
                    assert_eq!(e, Error::Dropped(id), "send {i}");
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    rt.block_on(async {
        for i in 0..N {
            match next_msg(&mut ws).await {
                Message::Binary(b) => {
                    assert_eq!(b.len(), size(i), "message {i}: length");
                    assert_eq!(b[0], i as u8, "message {i}: out of order");
                    assert!(b[1..].iter().all(|&x| x == (i % 251) as u8), "message {i}: content");
                }
                other => panic!("message {i}: {other:?}"),
            }
        }
    });
    sender.join().unwrap();
    let expected: u64 = (0..N).map(|i| frame_len(size(i)) as u64).sum();
    // Counted right after each write: the last may have arrived first.
    wait("every frame counted", || h.stats().bytes_out - before >= expected);
    assert_eq!(h.stats().bytes_out - before, expected, "bytes_out counts every frame byte once");
    assert_eq!(h.queued_bytes(id), Ok(0));
    server.close(Duration::from_millis(300));
    check_event_order(&rec.snapshot());
}

#[test]
fn overflow_policy_close_closes_with_1013() {
    let config = Config {
        send_queue_limit: SOFT,
        send_queue_hard_limit: HARD,
        overflow: OverflowPolicy::Close(1013),
        close_timeout: Duration::from_secs(3),
        ..cfg()
    };
    let (server, rec, port) = start(config, false);
    let h = server.handle();
    let rt = rt();
    let mut ws = rt.block_on(connect_small_rcvbuf(port));
    let id = rec.nth_open(0);
    let (sent, saw_backpressure, _) = fill(&h, id);
    assert!(saw_backpressure);
    assert_eq!(h.send(id, b"x", Kind::Binary), Err(Error::Closed(id)), "sends after the overflow close");
    // The client reads: some of the accepted messages (unsent ones may be
    // discarded), in order, then close 1013.
    let (msgs, close) = rt.block_on(read_until_close(&mut ws));
    assert!(msgs.len() as u32 <= sent);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m, &Message::binary(numbered(i as u32)), "message {i}");
    }
    assert_eq!(close_of(&close).0, 1013);
    assert_eq!(rec.wait_close(id).0, 1013);
    let mine = rec.events_of(id);
    assert!(mine.iter().any(|e| matches!(e, Ev::Error(..))), "no on_error for the overflow: {mine:?}");
    server.close(Duration::from_millis(300));
    check_event_order(&rec.snapshot());
}

// ---------------------------------------------------------------------------
// Graceful close
// ---------------------------------------------------------------------------

#[test]
fn close_delivers_queued_messages_then_1001_and_waits_for_on_close() {
    let (server, rec, port) = start(cfg(), true);
    let h = server.handle();
    let rt = rt();
    let (clients, ids) = connect_several(&rt, &rec, port, 3, "/");
    let tasks: Vec<_> =
        clients.into_iter().map(|mut ws| rt.spawn(async move { read_until_close(&mut ws).await })).collect();
    for i in 0..50 {
        for id in &ids {
            h.send(*id, format!("queued {i}").as_bytes(), Kind::Text).unwrap();
        }
    }
    let t0 = Instant::now();
    server.close(Duration::from_secs(3));
    let took = t0.elapsed();
    // Every on_close ran before close returned.
    let closes = rec.closes();
    for id in &ids {
        assert!(
            closes.iter().any(|c| c.0 == *id && c.1 == 1001),
            "conn {id}: no on_close(1001) when close returned: {closes:?}"
        );
    }
    assert!(took < Duration::from_secs(2), "close waited {took:?} for clients that answered");
    for t in tasks {
        let (msgs, close) = rt.block_on(t).unwrap();
        let texts: Vec<String> = msgs.iter().map(text).collect();
        assert_eq!(texts, (0..50).map(|i| format!("queued {i}")).collect::<Vec<_>>());
        assert_eq!(close_of(&close), (1001, "server shutting down".to_string()));
    }
    // Twice is fine, and quick.
    let t0 = Instant::now();
    server.close(Duration::from_secs(3));
    assert!(t0.elapsed() < Duration::from_millis(200));
    // After close.
    assert!(matches!(server.listen("127.0.0.1", 0), Err(Error::State(_))));
    assert!(matches!(server.update_config(|c| c.threads = 2), Err(Error::State(_))));
    assert_eq!(h.send(ids[0], b"x", Kind::Text), Err(Error::Closed(ids[0])));
    assert_eq!(h.broadcast(b"x", Kind::Text, None), Ok(0));
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the listener survived close");
    check_event_order(&rec.snapshot());
}

#[test]
fn close_reports_1006_for_a_client_that_never_answers() {
    let (server, rec, port) = start(Config { close_timeout: Duration::from_secs(10), ..cfg() }, true);
    let rt = rt();
    let mut deaf = RawClient::open(port, "/deaf");
    let ws = rt.block_on(connect(port, "/polite"));
    let (deaf_id, polite_id) = (rec.nth_open(0), rec.nth_open(1));
    let polite = rt.spawn(async move {
        let mut ws = ws;
        read_until_close(&mut ws).await
    });
    let t0 = Instant::now();
    server.close(Duration::from_millis(300));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(250), "close returned after {took:?}, before the grace");
    assert!(took < Duration::from_millis(2000), "close took {took:?} with a 300 ms grace");
    let closes = rec.closes();
    assert!(closes.iter().any(|c| c.0 == deaf_id && c.1 == 1006), "deaf client: {closes:?}");
    assert!(closes.iter().any(|c| c.0 == polite_id && c.1 == 1001), "polite client: {closes:?}");
    let (_, close) = rt.block_on(polite).unwrap();
    assert_eq!(close_of(&close).0, 1001);
    // The deaf client did get the close frame, then the end of the connection.
    let f = deaf.read_frame();
    assert_eq!((f.opcode, f.close_code()), (OP_CLOSE, Some(1001)));
    deaf.expect_end();
    check_event_order(&rec.snapshot());
}

/// Calls `Server::close` from inside `on_message` when told "shutdown".
#[derive(Default)]
struct SelfCloser {
    rec: Recorder,
    server: OnceLock<Weak<Server>>,
    close_returned_in: Mutex<Option<Duration>>,
}

impl Handler for SelfCloser {
    fn on_open(&self, s: &ServerHandle, c: ConnId, r: &Request) -> Result<(), u16> {
        self.rec.on_open(s, c, r)
    }
    fn on_message(&self, s: &ServerHandle, c: ConnId, d: &[u8], k: Kind) {
        self.rec.on_message(s, c, d, k);
        if d == b"shutdown" {
            let server = self.server.get().unwrap().upgrade().expect("server alive");
            let t0 = Instant::now();
            server.close(Duration::from_secs(5));
            server.close(Duration::from_secs(5));
            *self.close_returned_in.lock().unwrap() = Some(t0.elapsed());
        }
    }
    fn on_close(&self, s: &ServerHandle, c: ConnId, code: u16, r: &str) {
        self.rec.on_close(s, c, code, r)
    }
}

#[test]
fn close_from_inside_a_callback_returns_and_drop_finishes() {
    let h = Arc::new(SelfCloser::default());
    let server = Arc::new(Server::new(cfg(), h.clone()));
    h.server.set(Arc::downgrade(&server)).unwrap();
    let port = server.listen("127.0.0.1", 0).unwrap().port();
    let rt = rt();
    let (mut a, mut b) = rt.block_on(async { (connect(port, "/a").await, connect(port, "/b").await) });
    rt.block_on(async {
        a.send(Message::text("shutdown")).await.unwrap();
    });
    wait("close to return inside the callback", || h.close_returned_in.lock().unwrap().is_some());
    let took = h.close_returned_in.lock().unwrap().unwrap();
    assert!(took < Duration::from_secs(1), "close inside a callback blocked for {took:?}");
    // Both clients are told the server is going away.
    rt.block_on(async {
        for ws in [&mut a, &mut b] {
            let (_, close) = read_until_close(ws).await;
            assert_eq!(close_of(&close), (1001, "server shutting down".to_string()));
        }
    });
    // Dropping the server (here, not on an I/O thread) finishes the close.
    let (tx, rx) = std::sync::mpsc::channel();
    let rec_done = h.clone();
    std::thread::spawn(move || {
        drop(server);
        tx.send(rec_done.rec.closes().len()).unwrap();
    });
    let closes_at_drop = rx.recv_timeout(Duration::from_secs(5)).expect("dropping the server hung");
    assert_eq!(closes_at_drop, 2, "drop returned before every on_close ran");
    check_event_order(&h.rec.snapshot());
}

/// Blocks in on_open for `/slow` so that close can start meanwhile.
#[derive(Default)]
struct SlowOpen {
    rec: Recorder,
    in_open: AtomicUsize,
}

impl Handler for SlowOpen {
    fn on_open(&self, s: &ServerHandle, c: ConnId, r: &Request) -> Result<(), u16> {
        self.rec.on_open(s, c, r)?;
        if r.path() == "/slow" {
            self.in_open.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(())
    }
    fn on_close(&self, s: &ServerHandle, c: ConnId, code: u16, r: &str) {
        self.rec.on_close(s, c, code, r)
    }
}

#[test]
fn close_during_on_open_still_completes_the_handshake() {
    let h = Arc::new(SlowOpen::default());
    let (server, port) = start_with(cfg(), h.clone());
    let mut c = RawClient::connect(port);
    c.write(upgrade_request("/slow", "").as_bytes());
    wait("on_open to start", || h.in_open.load(Ordering::SeqCst) == 1);
    let closer = std::thread::spawn(move || {
        server.close(Duration::from_millis(500));
        server
    });
    // The client must first get a complete HTTP answer: 101 then close
    // 1001, or an HTTP refusal; never a close frame instead of a response.
    let r = c.read_response();
    let first = String::from_utf8_lossy(&c.buffered()[..c.buffered().len().min(16)]).into_owned();
    let r = r.unwrap_or_else(|e| panic!("no HTTP response ({e:?}); raw bytes received: {first:?}"));
    if r.status == 101 {
        assert_eq!(r.header("Sec-WebSocket-Accept"), Some(RFC_ACCEPT));
        let f = c.read_frame();
        assert_eq!((f.opcode, f.close_code()), (OP_CLOSE, Some(1001)));
    } else {
        assert_eq!(r.status / 100, 5, "{}", r.head);
    }
    let _server = closer.join().unwrap();
    check_event_order(&h.rec.snapshot());
}

// ---------------------------------------------------------------------------
// listen, hosts, configuration
// ---------------------------------------------------------------------------

#[test]
fn listen_errors_and_hosts() {
    // A port held by a plain listener, and one held by another server.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let s = Server::new(cfg(), Arc::new(Recorder::default()));
    assert!(matches!(s.listen("127.0.0.1", port), Err(Error::AddrInUse(_))), "port held by a TcpListener");
    // The failed listen left the server usable.
    let addr = s.listen("127.0.0.1", 0).expect("listen after AddrInUse");
    assert!(matches!(s.listen("127.0.0.1", 0), Err(Error::State(_))), "listen twice");
    let s2 = Server::new(cfg(), Arc::new(Recorder::default()));
    assert!(matches!(s2.listen("127.0.0.1", addr.port()), Err(Error::AddrInUse(_))), "port held by another server");
    for bad in ["example.com", "256.1.1.1", "", "127.0.0.1:80", "[127.0.0.1", "::1]", "[[::1]]", "local host"] {
        let s = Server::new(cfg(), Arc::new(Recorder::default()));
        assert!(matches!(s.listen(bad, 0), Err(Error::BadHost(_))), "host {bad:?}: {:?}", s.listen(bad, 0));
    }
    s.close(Duration::from_millis(100));
    drop(held);
    // Hosts that work.
    let rt = rt();
    for (host, url_host, v6) in [
        ("localhost", "127.0.0.1", false),
        ("LOCALHOST", "127.0.0.1", false),
        ("::1", "[::1]", true),
        ("[::1]", "[::1]", true),
        ("127.0.0.1", "127.0.0.1", false),
    ] {
        let rec = Arc::new(Recorder { echo: true, ..Default::default() });
        let s = Server::new(cfg(), rec.clone());
        let addr = s.listen(host, 0).unwrap_or_else(|e| panic!("listen on {host:?}: {e}"));
        assert!(addr.ip().is_loopback(), "{host}: bound {addr}");
        assert_eq!(addr.is_ipv6(), v6, "{host}: bound {addr}");
        assert_eq!(s.local_addr(), Some(addr));
        rt.block_on(async {
            let url = format!("ws://{url_host}:{}/", addr.port());
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap_or_else(|e| panic!("{host}: {e}"));
            ws.send(Message::text(host)).await.unwrap();
            assert_eq!(text(&next_msg(&mut ws).await), host);
            ws.close(None).await.unwrap();
            while ws.next().await.is_some() {}
        });
        if host == "localhost" {
            let req = rec.requests.lock().unwrap()[0].1.clone();
            assert!(req.peer_addr().ip().is_loopback());
        }
        s.close(Duration::from_millis(300));
    }
}

#[test]
fn update_config_only_before_listen() {
    let rec = Arc::new(Recorder { echo: true, ..Default::default() });
    let s = Server::new(cfg(), rec.clone());
    // An invalid config makes listen fail and leaves the server new.
    s.update_config(|c| c.overflow = OverflowPolicy::Close(1000)).unwrap();
    assert!(matches!(s.listen("127.0.0.1", 0), Err(Error::InvalidArgument(_))));
    s.update_config(|c| {
        c.overflow = OverflowPolicy::Drop;
        c.subprotocols = vec!["v1".into()];
        c.max_message_size = 10;
    })
    .unwrap();
    let port = s.listen("127.0.0.1", 0).expect("listen").port();
    assert_eq!(s.config().subprotocols, vec!["v1".to_string()]);
    assert_eq!(s.config().max_message_size, 10);
    assert!(matches!(s.update_config(|c| c.max_message_size = 1 << 20), Err(Error::State(_))));
    assert_eq!(s.config().max_message_size, 10, "a refused update_config changed the config");
    // The config in force is the updated one.
    let mut c = RawClient::open(port, "/");
    c.roundtrip("ten bytes!");
    c.text("eleven byte");
    c.expect_close(Some(1009));
    s.close(Duration::from_millis(300));
}

#[test]
fn log_lines_respect_the_level() {
    let rec = Arc::new(Recorder::default());
    let s = Server::new(Config { log_level: LogLevel::Warn, ..cfg() }, rec.clone());
    let port = s.listen("127.0.0.1", 0).unwrap().port();
    let mut c = RawClient::connect(port);
    c.write(b"GARBAGE\r\n\r\n");
    assert_eq!(c.read_refusal().status, 400);
    wait("a warning about the refused handshake", || {
        rec.logs.lock().unwrap().iter().any(|(l, _)| *l == LogLevel::Warn)
    });
    s.close(Duration::from_millis(100));
    let logs = rec.logs.lock().unwrap().clone();
    assert!(logs.iter().all(|(l, _)| *l <= LogLevel::Warn), "lines above the level: {logs:?}");
}

/// Refuses `/status/N` with `Err(N)`.
#[derive(Default)]
struct StatusRefuser(Recorder);
impl Handler for StatusRefuser {
    fn on_open(&self, s: &ServerHandle, c: ConnId, r: &Request) -> Result<(), u16> {
        self.0.on_open(s, c, r)?;
        match r.path().strip_prefix("/status/") {
            Some(n) => Err(n.parse().unwrap()),
            None => Ok(()),
        }
    }
    fn on_close(&self, s: &ServerHandle, c: ConnId, code: u16, r: &str) {
        self.0.on_close(s, c, code, r)
    }
}

#[test]
fn on_open_refusal_status_is_sent_and_out_of_range_becomes_500() {
    let h = Arc::new(StatusRefuser::default());
    let (server, port) = start_with(cfg(), h.clone());
    for (asked, want) in [
        (400u16, 400u16),
        (401, 401),
        (404, 404),
        (429, 429),
        (451, 451),
        (503, 503),
        (599, 599),
        (200, 500),
        (302, 500),
        (600, 500),
        (0, 500),
    ] {
        let mut c = RawClient::connect(port);
        c.write(upgrade_request(&format!("/status/{asked}"), "").as_bytes());
        let r = c.read_refusal();
        assert_eq!(r.status, want, "on_open returned Err({asked}): {}", r.head);
    }
    // close returns after every on_close has run.
    server.close(Duration::from_millis(100));
    assert!(h.0.closes().is_empty(), "refused connections got on_close: {:?}", h.0.closes());
}

#[test]
fn request_exposes_path_query_headers_and_peer() {
    let (server, rec, port) = start(cfg(), true);
    let mut c = RawClient::connect(port);
    let extra = "X-First: 1\r\nX-Dup: a\r\nX-Dup: b\r\nX-Latin: caf\u{e9}\r\n";
    c.write(upgrade_request("/room/42?user=ann&x=%20y", extra).as_bytes());
    c.expect_upgrade();
    c.roundtrip("hi");
    let (id, req) = rec.requests.lock().unwrap()[0].clone();
    assert_eq!(id, rec.nth_open(0));
    assert_eq!(req.path(), "/room/42");
    assert_eq!(req.query(), "user=ann&x=%20y");
    assert_eq!(req.header("x-first"), Some("1"));
    assert_eq!(req.header("X-DUP"), Some("a"), "the first of repeated headers");
    assert_eq!(req.header("X-Latin"), Some("café"));
    assert_eq!(req.header("absent"), None);
    let names: Vec<&str> = req.headers().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "Host",
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Version",
            "X-First",
            "X-Dup",
            "X-Dup",
            "X-Latin"
        ]
    );
    assert_eq!(req.peer_addr(), c.stream.local_addr().unwrap());
    let mut c2 = RawClient::open(port, "/");
    c2.roundtrip("hi");
    assert_eq!(rec.requests.lock().unwrap()[1].1.query(), "");
    server.close(Duration::from_millis(200));
}

#[test]
fn disconnect_of_a_client_that_never_answers_ends_after_close_timeout() {
    let (server, rec, port) = start(Config { close_timeout: Duration::from_millis(300), ..cfg() }, true);
    let h = server.handle();
    let mut deaf = RawClient::open(port, "/deaf");
    let id = rec.nth_open(0);
    assert_eq!(h.queued_bytes(id), Ok(0));
    let t0 = Instant::now();
    h.disconnect(id, 4000, "go away").unwrap();
    let f = deaf.read_frame();
    assert_eq!((f.opcode, f.close_code(), f.close_reason()), (OP_CLOSE, Some(4000), &b"go away"[..]));
    let (code, _) = rec.wait_close(id);
    let took = t0.elapsed();
    assert_eq!(code, 1006, "no close handshake happened");
    assert!(took >= Duration::from_millis(250) && took < Duration::from_millis(1500), "closed after {took:?}");
    deaf.expect_end();
    server.close(Duration::from_millis(100));
}

/// For each message "n k", replies k messages of mixed sizes from the
/// connection's own callback (they gather in its cork, and past it in the
/// queue); "close" sends one more reply and then closes with 4001.
struct Replier(Recorder);
impl Replier {
    const SIZES: [usize; 7] = [1, 125, 126, 3_000, 20_000, 40_000, 16];
    fn reply(n: u32, j: u32) -> Vec<u8> {
        let mut msg = vec![(n * 31 + j) as u8; Self::SIZES[(n + j) as usize % Self::SIZES.len()]];
        msg[0] = j as u8;
        msg
    }
}
impl Handler for Replier {
    fn on_open(&self, s: &ServerHandle, c: ConnId, r: &Request) -> Result<(), u16> {
        self.0.on_open(s, c, r)
    }
    fn on_message(&self, s: &ServerHandle, c: ConnId, d: &[u8], k: Kind) {
        self.0.on_message(s, c, d, k);
        let text = std::str::from_utf8(d).unwrap();
        if text == "close" {
            s.send(c, b"last", Kind::Text).unwrap();
            s.disconnect(c, 4001, "done").unwrap();
            return;
        }
        let (n, count) = text.split_once(' ').unwrap();
        let (n, count): (u32, u32) = (n.parse().unwrap(), count.parse().unwrap());
        for j in 0..count {
            assert_ne!(s.send(c, &Self::reply(n, j), Kind::Binary), Err(Error::Dropped(c)), "reply {n}.{j}");
        }
    }
    fn on_close(&self, s: &ServerHandle, c: ConnId, code: u16, r: &str) {
        self.0.on_close(s, c, code, r)
    }
    fn on_error(&self, s: &ServerHandle, c: ConnId, e: &Error) {
        self.0.on_error(s, c, e)
    }
}

#[test]
fn replies_from_a_callback_arrive_in_order_before_its_close_and_are_counted_once() {
    let frame_len = |n: usize| {
        n + if n < 126 {
            2
        } else if n < 65_536 {
            4
        } else {
            10
        }
    };
    let config = Config { send_queue_limit: 4 << 20, send_queue_hard_limit: 8 << 20, ..cfg() };
    let h = Arc::new(Replier(Recorder::default()));
    let (server, port) = start_with(config, h.clone());
    let handle = server.handle();
    let rt = rt();
    // A small receive buffer: the socket takes part of a read's replies, the
    // rest is written later by the connection's task.
    let mut ws = rt.block_on(connect_small_rcvbuf(port));
    let id = h.0.nth_open(0);
    wait("handshake answer written", || handle.queued_bytes(id) == Ok(0));
    let before = handle.stats().bytes_out;
    // Sent all at once, read only after: later replies meet a full socket
    // (its cork is written in part), and one read may hold several requests.
    let counts = [1u32, 3, 7, 2, 12, 1, 5, 9, 30, 4, 6, 1, 20, 8];
    let expected: u64 = rt.block_on(async {
        for (n, &count) in counts.iter().enumerate() {
            ws.feed(Message::text(format!("{n} {count}"))).await.unwrap();
        }
        ws.flush().await.unwrap();
        let mut bytes = 0;
        for (n, &count) in counts.iter().enumerate() {
            let n = n as u32;
            for j in 0..count {
                let want = Replier::reply(n, j);
                match next_msg(&mut ws).await {
                    Message::Binary(b) => {
                        assert!(b[..] == want[..], "reply {n}.{j}: {} bytes, not {}", b.len(), want.len())
                    }
                    other => panic!("reply {n}.{j}: {other:?}"),
                }
                bytes += frame_len(want.len()) as u64;
            }
        }
        ws.send(Message::text("close")).await.unwrap();
        let (msgs, close) = read_until_close(&mut ws).await;
        assert_eq!(msgs, [Message::text("last")], "the reply sent before the close comes before it");
        assert_eq!(close_of(&close).0, 4001);
        bytes + frame_len(4) as u64
    });
    assert_eq!(h.0.wait_close(id).0, 4001);
    // The close frame (2 + 2 + 4 bytes) is counted too.
    assert_eq!(handle.stats().bytes_out - before, expected + 8, "bytes_out counts every frame byte once");
    server.close(Duration::from_millis(300));
    check_event_order(&h.0.snapshot());
}

#[test]
fn a_lone_reply_too_large_for_the_cork_goes_out_with_nothing_else_coming() {
    // One request, then silence: the reply (40,000 B, past the 32 KiB cork)
    // is queued by the callback, and the task must write it though the
    // socket has nothing more to read (no later read or wake would).
    let h = Arc::new(Replier(Recorder::default()));
    let (server, port) = start_with(cfg(), h.clone());
    let rt = rt();
    rt.block_on(async {
        let mut ws = connect(port, "/").await;
        for n in [5u32, 12, 19] {
            assert_eq!(Replier::SIZES[n as usize % Replier::SIZES.len()], 40_000);
            ws.send(Message::text(format!("{n} 1"))).await.unwrap();
            match next_msg(&mut ws).await {
                Message::Binary(b) => assert!(b[..] == Replier::reply(n, 0)[..], "{} bytes", b.len()),
                other => panic!("{other:?}"),
            }
        }
    });
    server.close(Duration::from_millis(300));
}

/// Echoes, and panics on "boom" (a bug in a Rust host's handler).
struct Panicky(Recorder);
impl Handler for Panicky {
    fn on_open(&self, s: &ServerHandle, c: ConnId, r: &Request) -> Result<(), u16> {
        self.0.on_open(s, c, r)
    }
    fn on_message(&self, s: &ServerHandle, c: ConnId, d: &[u8], k: Kind) {
        assert!(d != b"boom", "the handler's own bug");
        s.send(c, d, k).unwrap();
    }
    fn on_close(&self, s: &ServerHandle, c: ConnId, code: u16, r: &str) {
        self.0.on_close(s, c, code, r)
    }
}

/// A handler's panic ends the connection it ran for (its close reported,
/// its socket closed) and nothing else: the other connections on the same
/// I/O thread, polled by the same driver, go on echoing.
#[test]
fn a_panicking_handler_ends_only_its_own_connection() {
    let h = Arc::new(Panicky(Recorder::default()));
    let (server, port) = start_with(Config { threads: 1, ..cfg() }, h.clone());
    let (mut victim, mut bystander) = (RawClient::open(port, "/"), RawClient::open(port, "/"));
    bystander.text("before");
    assert_eq!(bystander.read_frame().payload, b"before");
    victim.text("boom"); // its panic message shows in the output
    let closed = |ev: &[Ev]| ev.iter().any(|e| matches!(e, Ev::Close(..)));
    assert!(h.0.wait_until(Duration::from_secs(5), closed), "no close reported for the panicking connection");
    let closes = h.0.closes();
    assert_eq!((closes.len(), closes[0].1), (1, 1006), "one connection closed, as a 1006: {closes:?}");
    victim.set_read_timeout(Duration::from_secs(5));
    assert!(victim.try_read_frame().is_err(), "its socket is closed");
    for i in 0..20 {
        let m = format!("after {i}");
        bystander.text(&m);
        assert_eq!(bystander.read_frame().payload, m.as_bytes(), "the other connection still echoes");
    }
    assert_eq!(server.stats().open_connections, 1);
    server.close(Duration::from_secs(1));
}
