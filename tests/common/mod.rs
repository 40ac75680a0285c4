//! Shared helpers for the Rust integration tests: a recording handler and a
//! server started on a free loopback port.
#![allow(dead_code)]
pub mod certs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsserver::{Config, ConnId, Error, Handler, Kind, LogLevel, Request, Server, ServerHandle};

/// One event as the handler saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    Open(ConnId, String),
    Message(ConnId, Vec<u8>, Kind),
    Close(ConnId, u16, String),
    Error(ConnId, String),
    Drain(ConnId),
}

/// Records every event; echoes messages when `echo` is set.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<Ev>>,
    pub logs: Mutex<Vec<(LogLevel, String)>>,
    /// Request::client_subject of each accepted connection.
    pub subjects: Mutex<Vec<Option<String>>>,
    pub echo: bool,
    /// Every handshake request seen by `on_open`, with its connection id.
    pub requests: Mutex<Vec<(ConnId, Request)>>,
    /// How many echoes `on_message` has handed to `send` (counted after the
    /// call, so a test can wait until every echo is queued).
    pub echoed: AtomicUsize,
}

impl Handler for Recorder {
    fn on_open(&self, _s: &ServerHandle, conn: ConnId, req: &Request) -> Result<(), u16> {
        self.events.lock().unwrap().push(Ev::Open(conn, req.path().to_string()));
        self.subjects.lock().unwrap().push(req.client_subject().map(str::to_string));
        self.requests.lock().unwrap().push((conn, req.clone()));
        if req.path() == "/forbidden" {
            return Err(403);
        }
        Ok(())
    }
    fn on_message(&self, s: &ServerHandle, conn: ConnId, data: &[u8], kind: Kind) {
        self.events.lock().unwrap().push(Ev::Message(conn, data.to_vec(), kind));
        if self.echo {
            let _ = s.send(conn, data, kind);
            self.echoed.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn on_close(&self, _s: &ServerHandle, conn: ConnId, code: u16, reason: &str) {
        self.events.lock().unwrap().push(Ev::Close(conn, code, reason.to_string()));
    }
    fn on_error(&self, _s: &ServerHandle, conn: ConnId, e: &Error) {
        self.events.lock().unwrap().push(Ev::Error(conn, e.to_string()));
    }
    fn on_drain(&self, _s: &ServerHandle, conn: ConnId) {
        self.events.lock().unwrap().push(Ev::Drain(conn));
    }
    fn on_log(&self, level: LogLevel, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_string()));
    }
}

impl Recorder {
    pub fn snapshot(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }
    /// Waits up to 5 s for an event matching `f`.
    pub fn wait_for(&self, f: impl Fn(&Ev) -> bool) -> Ev {
        let seen = self.wait_until(Duration::from_secs(5), |ev| ev.iter().any(&f));
        assert!(seen, "event not seen; have {:?}", self.snapshot());
        // Events are only ever appended: the one seen is still there.
        self.snapshot().into_iter().find(|e| f(e)).unwrap()
    }
}

/// Polls `f` every 2 ms until it holds (true) or `limit` has passed (false).
pub fn poll_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until `f` is true, 5 s at most; fails the test naming `what`
/// otherwise. For conditions other than events (logs, counters, flags).
pub fn wait(what: &str, f: impl Fn() -> bool) {
    assert!(poll_until(Duration::from_secs(5), f), "timed out waiting for {what}");
}

/// Starts a server on 127.0.0.1 with a free port.
pub fn start(config: Config, echo: bool) -> (Server, Arc<Recorder>, u16) {
    let rec = Arc::new(Recorder { echo, ..Default::default() });
    let server = Server::new(config, rec.clone());
    let addr = server.listen("127.0.0.1", 0).expect("listen");
    (server, rec, addr.port())
}

// ---------------------------------------------------------------------------
// Helpers added for tests/integration/conformance.rs and api.rs.
// ---------------------------------------------------------------------------

impl Recorder {
    /// Waits up to `limit` for `f` to hold on the events; returns whether it did.
    pub fn wait_until(&self, limit: Duration, f: impl Fn(&[Ev]) -> bool) -> bool {
        poll_until(limit, || f(&self.snapshot()))
    }
    /// The events of one connection, in order.
    pub fn events_of(&self, conn: ConnId) -> Vec<Ev> {
        self.snapshot().into_iter().filter(|e| ev_conn(e) == conn).collect()
    }
    /// The `Message` events of one connection, in order.
    pub fn messages_of(&self, conn: ConnId) -> Vec<Ev> {
        self.events_of(conn).into_iter().filter(|e| matches!(e, Ev::Message(..))).collect()
    }
    /// The ids of every `Open` event, in order.
    pub fn opened(&self) -> Vec<ConnId> {
        self.snapshot().iter().filter_map(|e| if let Ev::Open(c, _) = e { Some(*c) } else { None }).collect()
    }
    /// Every `Close` event as (id, code, reason), in order.
    pub fn closes(&self) -> Vec<(ConnId, u16, String)> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| if let Ev::Close(c, code, r) = e { Some((c, code, r)) } else { None })
            .collect()
    }
    /// Waits up to 5 s for the `Close` event of `conn`; returns (code, reason).
    pub fn wait_close(&self, conn: ConnId) -> (u16, String) {
        match self.wait_for(|e| matches!(e, Ev::Close(c, ..) if *c == conn)) {
            Ev::Close(_, code, reason) => (code, reason),
            _ => unreachable!(),
        }
    }
    /// The id of the n-th opened connection (0-based), waiting up to 5 s.
    pub fn nth_open(&self, n: usize) -> ConnId {
        assert!(
            self.wait_until(Duration::from_secs(5), |ev| ev.iter().filter(|e| matches!(e, Ev::Open(..))).count() > n),
            "connection #{n} never opened; events {:?}",
            self.snapshot()
        );
        self.opened()[n]
    }
}

/// The connection an event belongs to.
pub fn ev_conn(e: &Ev) -> ConnId {
    match e {
        Ev::Open(c, _) | Ev::Message(c, _, _) | Ev::Close(c, _, _) | Ev::Error(c, _) | Ev::Drain(c) => *c,
    }
}

/// Checks the per-connection ordering guarantee on a finished event log:
/// every connection that appears starts with `Open`, has exactly one
/// `Close`, and that `Close` is its last event.
pub fn check_event_order(events: &[Ev]) {
    let mut ids: Vec<ConnId> = events.iter().map(ev_conn).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let mine: Vec<&Ev> = events.iter().filter(|e| ev_conn(e) == id).collect();
        assert!(matches!(mine[0], Ev::Open(..)), "conn {id}: first event is not Open: {mine:?}");
        let opens = mine.iter().filter(|e| matches!(e, Ev::Open(..))).count();
        assert_eq!(opens, 1, "conn {id}: {opens} Open events: {mine:?}");
        let closes = mine.iter().filter(|e| matches!(e, Ev::Close(..))).count();
        assert_eq!(closes, 1, "conn {id}: {closes} Close events: {mine:?}");
        assert!(matches!(mine.last().unwrap(), Ev::Close(..)), "conn {id}: Close is not last: {mine:?}");
    }
}

/// Starts a server like [`start`] and returns the full handle set, with a
/// custom handler.
pub fn start_with<H: Handler>(config: Config, handler: Arc<H>) -> (Server, u16) {
    let server = Server::new(config, handler);
    let addr = server.listen("127.0.0.1", 0).expect("listen");
    (server, addr.port())
}

/// The key of RFC 6455 §1.3 and its accept value.
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A valid upgrade request for `path`, with `extra` header lines (each
/// ending in CRLF) appended.
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// An HTTP response head as read by [`RawClient::read_response`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub headers: Vec<(String, String)>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count()
    }
}

/// One frame as received from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1..3 as the three bits 0b0111_0000 >> 4.
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    /// Bytes of the extended length field: 0 (7-bit), 2 (16-bit) or 8 (64-bit).
    pub ext_len: usize,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, 8, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
    pub fn close_reason(&self) -> &[u8] {
        if self.payload.len() >= 2 {
            &self.payload[2..]
        } else {
            &[]
        }
    }
}

pub const OP_CONT: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

/// The mask every raw client frame uses (any non-trivial value will do).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Encodes a frame as a client would: `b0` is the whole first byte (FIN,
/// RSV, opcode), the length uses the minimal form, and the payload is
/// masked with `mask` when given.
pub fn encode_frame_b0(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut v = vec![b0];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        v.push(m | n as u8);
    } else if n <= 0xffff {
        v.push(m | 126);
        v.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        v.push(m | 127);
        v.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            v.extend_from_slice(&k);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

/// A masked client frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode_frame_b0(if fin { 0x80 } else { 0 } | opcode, payload, Some(MASK))
}

/// A masked close frame with `code` and `reason` bytes.
pub fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    frame(true, OP_CLOSE, &p)
}

/// How a read from the server ended when it did not produce a frame.
#[derive(Debug)]
pub enum End {
    /// The server closed the TCP connection (EOF or reset).
    Closed,
    /// Nothing arrived within the read timeout.
    TimedOut,
    Other(std::io::Error),
}

/// A blocking raw-bytes WebSocket client on loopback. Reads time out after
/// 5 s (changeable) so a broken server cannot hang a test.
pub struct RawClient {
    pub stream: std::net::TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        RawClient { stream, buf: Vec::new() }
    }
    /// Connects, sends a valid upgrade request for `path` and checks the 101.
    pub fn open(port: u16, path: &str) -> RawClient {
        let mut c = Self::connect(port);
        c.write(upgrade_request(path, "").as_bytes());
        c.expect_upgrade();
        c
    }
    /// Reads the answer to an upgrade request carrying [`RFC_KEY`]: it must
    /// be a 101 with [`RFC_ACCEPT`]. Returns it for further checks.
    pub fn expect_upgrade(&mut self) -> HttpResponse {
        let r = self.read_response().unwrap_or_else(|e| panic!("no handshake response: {e:?}"));
        assert_eq!(r.status, 101, "handshake refused: {}", r.head);
        assert_eq!(r.header("Sec-WebSocket-Accept"), Some(RFC_ACCEPT), "{}", r.head);
        r
    }
    pub fn set_read_timeout(&self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
    }
    pub fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).expect("write to server");
    }
    /// Writes, returning the error instead of panicking.
    pub fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.stream.write_all(bytes)
    }
    pub fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.write(&frame(fin, opcode, payload));
    }
    pub fn text(&mut self, s: &str) {
        self.send(true, OP_TEXT, s.as_bytes());
    }
    /// Reads more bytes into the buffer.
    fn fill(&mut self) -> Result<(), End> {
        use std::io::Read;
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(End::Closed),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Err(End::TimedOut)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                Err(End::Closed)
            }
            Err(e) => Err(End::Other(e)),
        }
    }
    /// Reads an HTTP response head (the bytes after it stay buffered).
    pub fn read_response(&mut self) -> Result<HttpResponse, End> {
        loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..pos]).into_owned();
                self.buf.drain(..pos + 4);
                let mut lines = head.split("\r\n");
                let status_line = lines.next().unwrap_or("");
                let mut parts = status_line.splitn(3, ' ');
                assert_eq!(parts.next(), Some("HTTP/1.1"), "bad status line: {status_line:?}");
                let status = parts.next().and_then(|s| s.parse().ok()).expect("status code");
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                    .collect();
                return Ok(HttpResponse { status, head, headers });
            }
            self.fill()?;
        }
    }
    /// Reads an error response and its body, then expects the server to
    /// close the connection. Returns the response.
    pub fn read_refusal(&mut self) -> HttpResponse {
        let r = self.read_response().unwrap_or_else(|e| panic!("no HTTP response: {e:?}"));
        let len: usize = r.header("Content-Length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while self.buf.len() < len {
            self.fill().unwrap_or_else(|e| panic!("body cut short: {e:?}"));
        }
        self.buf.drain(..len);
        self.expect_end();
        r
    }
    /// Reads one frame; `Err` when the connection ended or timed out first.
    pub fn try_read_frame(&mut self) -> Result<Frame, End> {
        loop {
            if let Some((f, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Ok(f);
            }
            self.fill()?;
        }
    }
    pub fn read_frame(&mut self) -> Frame {
        self.try_read_frame().unwrap_or_else(|e| panic!("expected a frame, got {e:?}"))
    }
    /// Reads one frame that must be a data frame of this opcode and payload.
    pub fn expect_message(&mut self, opcode: u8, payload: &[u8]) {
        let f = self.read_frame();
        assert!(
            f.fin && f.opcode == opcode && f.payload == payload,
            "expected opcode {opcode} with {} bytes {:?}, got opcode {} fin {} with {} bytes {:?}",
            payload.len(),
            String::from_utf8_lossy(&payload[..payload.len().min(40)]),
            f.opcode,
            f.fin,
            f.payload.len(),
            String::from_utf8_lossy(&f.payload[..f.payload.len().min(40)])
        );
    }
    /// Sends a text message and expects it echoed.
    pub fn roundtrip(&mut self, s: &str) {
        self.text(s);
        self.expect_message(OP_TEXT, s.as_bytes());
    }
    /// The next frame must be a close frame with `code` (None: empty
    /// payload); then the server must end the TCP connection. Returns the
    /// close frame.
    pub fn expect_close(&mut self, code: Option<u16>) -> Frame {
        self.expect_close_for("expect_close", code)
    }
    /// [`expect_close`](Self::expect_close), with `what` naming the case in
    /// every failure message.
    pub fn expect_close_for(&mut self, what: &str, code: Option<u16>) -> Frame {
        let f = self.try_read_frame().unwrap_or_else(|e| panic!("{what}: no close frame, got {e:?}"));
        assert_eq!(f.opcode, OP_CLOSE, "{what}: expected a close frame, got {f:?}");
        assert!(f.fin && !f.masked && f.rsv == 0, "{what}: malformed close frame {f:?}");
        assert_eq!(
            f.close_code(),
            code,
            "{what}: close code (reason {:?}); frame {f:?}",
            String::from_utf8_lossy(f.close_reason())
        );
        assert!(std::str::from_utf8(f.close_reason()).is_ok(), "{what}: close reason not UTF-8");
        self.expect_end();
        f
    }
    /// The server must end the TCP connection with nothing more sent.
    /// Reads exactly `n` bytes (after what is buffered).
    pub fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill().unwrap_or_else(|e| panic!("wanted {n} bytes, got {}: {e:?}", self.buf.len()));
        }
        self.buf.drain(..n).collect()
    }
    pub fn expect_end(&mut self) {
        loop {
            if !self.buf.is_empty() {
                panic!("unexpected bytes before the end of the connection: {:?}", &self.buf[..self.buf.len().min(64)]);
            }
            match self.fill() {
                Ok(()) => continue,
                Err(End::Closed) => return,
                Err(e) => panic!("connection did not end: {e:?}"),
            }
        }
    }
    /// Bytes received and not yet parsed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }
}

/// Parses one server frame at the start of `buf`: the frame and its size.
pub fn parse_server_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let (b0, b1) = (buf[0], buf[1]);
    let masked = b1 & 0x80 != 0;
    let (len, ext) = match b1 & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 2)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 8)
        }
        n => (n as usize, 0),
    };
    let start = 2 + ext + if masked { 4 } else { 0 };
    if buf.len() < start + len {
        return None;
    }
    let mut payload = buf[start..start + len].to_vec();
    if masked {
        let k = &buf[2 + ext..start];
        payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= k[i % 4]);
    }
    let f = Frame { fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, ext_len: ext, payload };
    Some((f, start + len))
}

/// Raises the soft limit on open files to at least `need` (this process
/// holds both ends of every connection), within the hard limit.
pub fn raise_fd_limit(need: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit to fill / read.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < need {
            lim.rlim_cur = need.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0, "setrlimit(RLIMIT_NOFILE)");
        }
    }
    assert!(lim.rlim_cur >= need, "this test needs {need} open files; the hard limit is {}", lim.rlim_max);
}

/// Resident memory of this process, in bytes.
pub fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("statm resident");
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// Bytes in MiB, for printing.
pub fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// The next data or close message (pings and pongs skipped), 5 s at most.
pub async fn next_msg<S>(ws: &mut S) -> tokio_tungstenite::tungstenite::Message
where
    S: futures_util::Stream<
            Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
        > + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(5), futures_util::StreamExt::next(ws)).await {
            Err(_) => panic!("no message within 5 s"),
            Ok(None) => panic!("stream ended"),
            Ok(Some(Err(e))) => panic!("client error: {e}"),
            Ok(Some(Ok(
                tokio_tungstenite::tungstenite::Message::Ping(_) | tokio_tungstenite::tungstenite::Message::Pong(_),
            ))) => continue,
            Ok(Some(Ok(m))) => return m,
        }
    }
}
