//! The server: its runtime, listener and accept loop, keep-alive sweeper,
//! the operations hosts call (send, broadcast, disconnect) and the graceful
//! close.
use crate::budget::Budget;
use crate::connection::{Connection, Host};
use crate::cork::Cork;
use crate::events::{EventQueue, Events, Polled, Verdict};
use crate::handshake::{self, Incoming, Refusal};
use crate::http::response::Response;
use crate::io_threads::IoThreads;
use crate::outbox::{ConnShared, CurrentConn, Limits, SendNotes, Via};
use crate::outgoing::{ConnDeflate, Outgoing};
use crate::protocol::frame::{self, OpCode};
use crate::protocol::{deflate, Reader};
use crate::registry::Registry;
use crate::stats::{Counters, Stats};
use crate::tls_stream::TlsStream;
use crate::topics::Topics;
use crate::wakes::RemoteWakes;
use crate::{Config, ConnId, Error, Handler, Kind, LogLevel, Tls};
use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub use crate::outbox::SendStatus;

const NEW: u8 = 0;
const LISTENING: u8 = 1;
const CLOSING: u8 = 2;
const CLOSED: u8 = 3;

/// State shared by the server, its handles and its connections.
pub(crate) struct Inner {
    pub events: Events,
    /// Set by `listen`; fixed from then on.
    config: OnceLock<Config>,
    pending_config: Mutex<Config>,
    pub registry: Registry,
    pub topics: Topics,
    pub counters: Counters,
    /// Plain HTTP requests waiting for the host's answer.
    pub http: crate::http::serve::HostRequests,
    next_id: AtomicU64,
    /// Sockets accepted and not yet finished (handshakes included).
    slots: AtomicUsize,
    /// Connections opened and not yet reported closed.
    open: Mutex<usize>,
    open_changed: Condvar,
    started: Instant,
    clock_ms: AtomicU64,
    state: AtomicU8,
    local_addr: OnceLock<SocketAddr>,
    background: Mutex<Vec<JoinHandle<()>>>,
    io: Mutex<Option<IoThreads>>,
    close_lock: Mutex<()>,
    /// The TLS configuration new handshakes use; swapped by `reload_tls`.
    tls: RwLock<Option<Tls>>,
    /// The Redis backplane, when the config names one; set by `listen`.
    backplane: OnceLock<Arc<crate::backplane::Shared>>,
    /// WS_OPT_MEMORY_BUDGET: what all connections hold together.
    pub budget: Arc<Budget>,
}

impl Inner {
    /// Milliseconds since the server started, as last seen by the sweeper.
    pub fn now_ms(&self) -> u64 {
        self.clock_ms.load(Ordering::Relaxed)
    }

    /// Takes a connection out of service: no more sends, no more lookups.
    pub fn forget(&self, conn: &ConnShared) {
        self.topics.forget(conn.id, conn.shut());
        self.registry.remove(conn.id);
    }

    /// A new id for a connection or a host-answered HTTP request.
    pub fn new_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Called once per opened connection, after its `on_close`.
    pub fn connection_ended(&self) {
        let mut open = self.open.lock();
        *open -= 1;
        if *open == 0 {
            self.open_changed.notify_all();
        }
    }

    fn on_io_thread(&self) -> bool {
        crate::io_threads::is_io_thread_of(self as *const Inner as usize)
    }
}

/// A cheap, clonable reference to a server: what callbacks and other
/// threads use to send, broadcast and disconnect. Every method is
/// thread-safe and never blocks on the network.
#[derive(Clone)]
pub struct ServerHandle {
    pub(crate) inner: Arc<Inner>,
}

/// Holds one accepted socket's place against `max_connections` until the
/// socket is finished; doubles as the connection's way to its server.
pub(crate) struct Slot(ServerHandle);

impl Slot {
    pub fn server(&self) -> &ServerHandle {
        &self.0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.inner.slots.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Host for Slot {
    fn config(&self) -> &Config {
        self.0.config()
    }

    fn counters(&self) -> &Counters {
        &self.0.inner.counters
    }

    fn now_ms(&self) -> u64 {
        self.0.inner.now_ms()
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.0.log(level, message)
    }

    fn message(&self, conn: &Arc<ConnShared>, data: &[u8], kind: Kind) {
        let c = &self.0.inner.counters;
        Counters::add(&c.messages_in, 1);
        Counters::add(&c.bytes_in, data.len() as u64);
        self.0.inner.events.message(&self.0, conn, data, kind);
    }

    fn error(&self, conn: &Arc<ConnShared>, error: &Error) {
        self.0.inner.events.error(&self.0, conn, error)
    }

    fn drain(&self, conn: &Arc<ConnShared>) {
        self.0.inner.events.drain(&self.0, conn)
    }

    fn closed(&self, conn: &Arc<ConnShared>, code: u16, reason: &str) {
        let inner = &self.0.inner;
        inner.forget(conn);
        inner.events.close(&self.0, conn, code, reason);
        inner.connection_ended();
    }

    fn poll_event_room(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.0.inner.events.poll_room(cx)
    }

    fn budget(&self) -> &Budget {
        &self.0.inner.budget
    }
}

impl ServerHandle {
    /// The options in force (the defaults before `listen`).
    pub fn config(&self) -> &Config {
        static DEFAULT: OnceLock<Config> = OnceLock::new();
        self.inner.config.get().unwrap_or_else(|| DEFAULT.get_or_init(Config::default))
    }

    fn limits(&self) -> Limits {
        let c = self.config();
        Limits { soft: c.send_queue_limit, hard: c.send_queue_hard_limit, overflow: c.overflow }
    }

    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        self.log_with(self.config(), level, message);
    }

    fn log_with(&self, config: &Config, level: LogLevel, message: &str) {
        if level <= config.log_level {
            self.inner.events.log(level, message);
        }
    }

    /// Runs `f` on connection `conn`: the one whose callback is running on
    /// this thread needs no registry lookup, others are found by id.
    fn with_conn<R>(&self, conn: ConnId, f: impl FnOnce(&ConnShared) -> R) -> Result<R, Error> {
        let f = match crate::outbox::with_current(conn, |c, _| f(c)) {
            Ok(r) => return Ok(r),
            Err(f) => f,
        };
        match self.inner.registry.with(conn, |c| f(c, None)) {
            Some(r) => Ok(r),
            None if conn != 0 && conn < self.inner.next_id.load(Ordering::Relaxed) => Err(Error::Closed(conn)),
            None => Err(Error::NoSuchConn(conn)),
        }
    }

    /// Queues one message for `conn`. Text must be UTF-8. A connection
    /// under its send-queue limit takes any message; one at the limit
    /// refuses a message that would pass the hard limit
    /// ([`Error::Dropped`], logged at WARN once until the queue drains).
    #[inline]
    pub fn send(&self, conn: ConnId, data: &[u8], kind: Kind) -> Result<SendStatus, Error> {
        self.send_with(conn, data, kind, true)
    }

    /// [`ServerHandle::send`], choosing whether the message may be
    /// compressed (`compress` false: sent as is even where deflate was
    /// negotiated, for data that is compressed already).
    ///
    /// Inlined into its callers (the C ABI's send): a reply from the
    /// connection's own callback (the echo) goes into its cork here, and
    /// only the rest pays for a call with the general path's stack frame.
    #[inline(always)]
    pub fn send_with(&self, conn: ConnId, data: &[u8], kind: Kind, compress: bool) -> Result<SendStatus, Error> {
        let opcode = crate::outgoing::data_opcode(data, kind)?;
        if crate::outbox::cork_current(conn, opcode, data) {
            Counters::add(&self.inner.counters.messages_out, 1);
            return Ok(SendStatus::Queued);
        }
        self.send_queued(conn, data, opcode, compress)
    }

    /// [`ServerHandle::send_with`] of a message its connection's cork did
    /// not take: queued (or written here, from another thread).
    #[inline(never)]
    fn send_queued(&self, conn: ConnId, data: &[u8], opcode: OpCode, compress: bool) -> Result<SendStatus, Error> {
        let out = Outgoing::checked(data, opcode, self.config(), compress).for_one();
        let limits = self.limits();
        let mut notes = SendNotes::default();
        let own = |c: &ConnShared, _: Option<&Cork>| c.send(&out, limits, Via::Own, &mut notes);
        let result = match crate::outbox::with_current(conn, own) {
            Ok(r) => r,
            // Another connection than the one polled here: held by its Arc,
            // so that a direct write's system call (`ConnShared::send`) runs
            // outside the registry's shard lock, which other senders and the
            // I/O threads take.
            Err(_) => self.shared(conn)?.send(&out, limits, Via::Other, &mut notes),
        };
        if result.is_ok() {
            Counters::add(&self.inner.counters.messages_out, 1);
            if notes.written > 0 {
                Counters::add(&self.inner.counters.bytes_out, notes.written as u64);
            }
        }
        if let Some(queued) = notes.first_refusal {
            self.log(
                LogLevel::Warn,
                &format!(
                    "connection {conn}: a {} byte message was dropped: {queued} bytes already queued \
                     (send queue limit {}, hard limit {}); further drops are not logged until it drains",
                    data.len(),
                    limits.soft,
                    limits.hard
                ),
            );
        }
        result
    }

    /// Queues one message for every open connection but `except`. The frame
    /// is encoded (and compressed) once and shared. Returns how many
    /// connections queued it (those over their hard limit, or closing, do not).
    pub fn broadcast(&self, data: &[u8], kind: Kind, except: Option<ConnId>) -> Result<usize, Error> {
        let out = Outgoing::new(data, kind, self.config(), true)?;
        Ok(self.send_to_each(&out, except, "broadcast", |f| self.inner.registry.for_each(f)))
    }

    /// Queues `out` on every connection `each` yields but `except`;
    /// counts, and logs the first refusals (after `each`'s locks are gone).
    fn send_to_each(
        &self,
        out: &Outgoing,
        except: Option<ConnId>,
        what: &str,
        each: impl FnOnce(&mut dyn FnMut(&Arc<ConnShared>)),
    ) -> usize {
        let limits = self.limits();
        let (mut queued, mut refused) = (0, 0);
        each(&mut |c: &Arc<ConnShared>| {
            let mut notes = SendNotes::default();
            if Some(c.id) != except && c.send(out, limits, Via::Many, &mut notes).is_ok() {
                queued += 1;
            }
            refused += notes.first_refusal.is_some() as usize;
        });
        Counters::add(&self.inner.counters.messages_out, queued as u64);
        if refused > 0 {
            self.log(
                LogLevel::Warn,
                &format!(
                    "{what} of {} bytes dropped for {refused} connections over their send-queue limits",
                    out.len()
                ),
            );
        }
        queued
    }

    /// Subscribes `conn` to `topic` (1..=1024 bytes); true if it was not
    /// subscribed yet. The subscription ends with the connection.
    pub fn subscribe(&self, conn: ConnId, topic: &str) -> Result<bool, Error> {
        let shared = self.shared(conn)?;
        self.inner.topics.subscribe(&shared, topic)
    }

    /// Unsubscribes `conn` from `topic`; true if it was subscribed.
    pub fn unsubscribe(&self, conn: ConnId, topic: &str) -> Result<bool, Error> {
        crate::topics::check_topic(topic)?;
        let shared = self.shared(conn)?;
        Ok(self.inner.topics.unsubscribe(&shared, topic))
    }

    /// Queues one message for every subscriber of `topic` but `except`:
    /// encoded once, the frame shared. An unknown or empty topic is fine
    /// (0). Publishes from one thread reach each subscriber in order.
    /// With a backplane ([`Config::backplane`]) the message also goes, once,
    /// to the broker when another server subscribes the topic; the local
    /// subscribers are served here, without the broker.
    pub fn publish(&self, topic: &str, data: &[u8], kind: Kind, except: Option<ConnId>) -> Result<usize, Error> {
        crate::topics::check_topic(topic)?;
        let n = self.publish_local(topic, data, kind, except)?;
        if let Some(bp) = self.inner.backplane.get() {
            bp.publish(topic, data, kind);
        }
        Ok(n)
    }

    /// To this server's subscribers of `topic` only (a publish here, or a
    /// message another server published).
    pub(crate) fn publish_local(
        &self,
        topic: &str,
        data: &[u8],
        kind: Kind,
        except: Option<ConnId>,
    ) -> Result<usize, Error> {
        let out = Outgoing::new(data, kind, self.config(), true)?;
        Ok(self.send_to_each(&out, except, "publish", |f| self.inner.topics.for_each(topic, f)))
    }

    /// Subscribers of `topic` now.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.inner.topics.subscribers(topic)
    }

    /// The server's counters and gauges; cheap (one pass over the
    /// connections for the queued bytes), from any thread.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let mut stats = inner.counters.read();
        stats.open_connections = *inner.open.lock() as u64;
        inner.registry.for_each(&mut |c| stats.queued_bytes += c.queued_bytes_now() as u64);
        let (topics, subscriptions) = inner.topics.totals();
        (stats.topics, stats.subscriptions) = (topics as u64, subscriptions as u64);
        if let Some(bp) = inner.backplane.get() {
            [
                stats.backplane_connected,
                stats.backplane_published,
                stats.backplane_received,
                stats.backplane_local_only,
                stats.backplane_reconnects,
            ] = bp.read();
        }
        stats.memory_held = inner.budget.held() as u64;
        stats
    }

    /// The shared state of live connection `conn`.
    fn shared(&self, conn: ConnId) -> Result<Arc<ConnShared>, Error> {
        match self.inner.registry.get(conn) {
            Some(c) => Ok(c),
            None if conn != 0 && conn < self.inner.next_id.load(Ordering::Relaxed) => Err(Error::Closed(conn)),
            None => Err(Error::NoSuchConn(conn)),
        }
    }

    /// Starts the close handshake with `conn`: queued messages go out
    /// first, then a close frame with `code` and `reason`.
    pub fn disconnect(&self, conn: ConnId, code: u16, reason: &str) -> Result<(), Error> {
        if !frame::is_valid_close_code(code) {
            return Err(Error::BadCloseCode(code));
        }
        if reason.len() > 123 {
            return Err(Error::ReasonTooLong(reason.len()));
        }
        self.with_conn(conn, |c| c.close(code, reason))?
    }

    /// The value of numeric option `id` (a WS_OPT_* number) in force, or
    /// staged before `listen`.
    pub fn option(&self, id: u32) -> Option<u64> {
        match self.inner.config.get() {
            Some(c) => c.option(id),
            None => self.inner.pending_config.lock().option(id),
        }
    }

    /// Accepts a connection whose open is waiting for the host (event mode
    /// without `auto_accept`), optionally with `subprotocol` (one the
    /// client offered) instead of the server's own choice.
    pub fn accept(&self, conn: ConnId, subprotocol: Option<&str>) -> Result<(), Error> {
        let verdict = Verdict::Accept(subprotocol.map(str::to_string));
        self.with_conn(conn, |c| c.answer(verdict, None))?
    }

    /// Refuses a connection whose open is waiting for the host, with an
    /// HTTP status 400..=599.
    pub fn refuse(&self, conn: ConnId, status: u16) -> Result<(), Error> {
        self.refuse_with_body(conn, status, None)
    }

    /// As [`ServerHandle::refuse`], with a short body (at most 64 KiB; its
    /// Content-Type may be set with [`ServerHandle::add_answer_header`],
    /// text/plain otherwise).
    pub fn refuse_with_body(&self, conn: ConnId, status: u16, body: Option<&[u8]>) -> Result<(), Error> {
        if !(400..=599).contains(&status) {
            return Err(Error::InvalidArgument(format!("HTTP status {status} is not 400..599")));
        }
        self.with_conn(conn, |c| c.answer(Verdict::Refuse(status), body.map(<[u8]>::to_vec)))?
    }

    /// From inside `on_open` (callback mode): the host will answer with
    /// [`ServerHandle::accept`] or [`ServerHandle::refuse`] later, from any
    /// thread, within the handshake timeout (else 503).
    pub fn defer(&self, conn: ConnId) -> Result<(), Error> {
        self.with_conn(conn, |c| c.defer_answer())?
    }

    /// Adds a header (`Set-Cookie`, ...) to the answer to `conn`'s open,
    /// the 101 or the refusal, while that answer is not given yet.
    /// Also for a plain HTTP request waiting for [`ServerHandle::respond`].
    pub fn add_answer_header(&self, conn: ConnId, name: &str, value: &str) -> Result<(), Error> {
        if self.inner.http.waiting(conn) {
            return self.inner.http.add_header(conn, name, value);
        }
        self.with_conn(conn, |c| c.add_answer_header(name, value))?
    }

    /// Answers plain HTTP request `id` (given to [`Handler::on_http`] or as
    /// [`crate::Event::Http`]) with `status` (100..=599), a Content-Type
    /// and a body. Headers added with [`ServerHandle::add_answer_header`]
    /// before it go along.
    pub fn respond(&self, id: ConnId, status: u16, content_type: Option<&str>, body: &[u8]) -> Result<(), Error> {
        if !(100..=599).contains(&status) {
            return Err(Error::InvalidArgument(format!("HTTP status {status} is not 100..599")));
        }
        let mut response = crate::http::response::Response::new(status);
        if let Some(t) = content_type {
            crate::http::response::check_header("Content-Type", t).map_err(Error::InvalidArgument)?;
            response.headers.push(("Content-Type".into(), t.into()));
        }
        response.body = body.to_vec();
        self.inner.http.respond(id, response).map_err(|e| match e {
            Error::Closed(_) if id == 0 || id >= self.inner.next_id.load(Ordering::Relaxed) => Error::NoSuchConn(id),
            e => e,
        })
    }

    /// Sets the host's value for `conn`, handed back with its events.
    pub fn set_user_data(&self, conn: ConnId, value: usize) -> Result<(), Error> {
        self.with_conn(conn, |c| c.set_user_data(value))
    }

    /// The host's value for `conn` (0 until set).
    pub fn user_data(&self, conn: ConnId) -> Result<usize, Error> {
        self.with_conn(conn, |c| c.user_data())
    }

    fn queue(&self) -> Result<&Arc<EventQueue>, Error> {
        self.inner
            .events
            .queue()
            .ok_or_else(|| Error::State("no event queue: set event_queue (WS_OPT_EVENT_QUEUE) and listen first".into()))
    }

    /// Takes the next queued event, waiting up to `timeout` (`None`:
    /// forever). `Ok(None)` when none came in time; [`Error::Closed`] once
    /// the server is closed and every event has been taken.
    pub fn poll_event(&self, timeout: Option<Duration>) -> Result<Option<Polled>, Error> {
        self.queue()?.take(timeout)
    }

    /// A file descriptor that is readable while events wait (level
    /// triggered); owned by the server.
    pub fn event_fd(&self) -> Result<std::os::fd::RawFd, Error> {
        Ok(self.queue()?.fd())
    }

    /// Bytes queued for `conn` and not yet written to its socket.
    pub fn queued_bytes(&self, conn: ConnId) -> Result<usize, Error> {
        self.with_conn(conn, ConnShared::queued_bytes)
    }

    /// Replaces the certificate, key and client CA for new handshakes; open
    /// connections carry on with what they negotiated. Only on a server
    /// listening with TLS ([`Error::State`] otherwise).
    pub fn reload_tls(&self, tls: Tls) -> Result<(), Error> {
        if self.inner.state.load(Ordering::SeqCst) != LISTENING {
            return Err(Error::State("reload_tls needs a listening server".into()));
        }
        let mut current = self.inner.tls.write();
        if current.is_none() {
            return Err(Error::State("the server was not started with TLS".into()));
        }
        if let Some(w) = &tls.validity_warning {
            self.log(LogLevel::Warn, w);
        }
        *current = Some(tls);
        drop(current);
        self.log(LogLevel::Info, "TLS certificate reloaded");
        Ok(())
    }

    /// The bound address, once `listen` succeeded.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr.get().copied()
    }
}

/// A WebSocket server. Dropping it closes it (1 s grace).
pub struct Server {
    handle: ServerHandle,
}

impl std::ops::Deref for Server {
    type Target = ServerHandle;
    fn deref(&self) -> &ServerHandle {
        &self.handle
    }
}

/// Turns `host` into an address: an IPv4 or IPv6 literal (brackets
/// allowed) or `localhost` (127.0.0.1).
fn parse_host(host: &str) -> Result<IpAddr, Error> {
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bad = || Error::BadHost(format!("'{host}' is not an IPv4/IPv6 literal or 'localhost'"));
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().map(IpAddr::V6).map_err(|_| bad()),
        None => host.parse::<IpAddr>().map_err(|_| bad()),
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, Error> {
    use socket2::{Domain, Socket, Type};
    let io = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::AddrInUse(format!("{addr}: {e}"))
        } else {
            Error::Io(format!("cannot listen on {addr}: {e}"))
        }
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(io)?;
    socket.set_reuse_address(true).map_err(io)?;
    socket.bind(&addr.into()).map_err(io)?;
    socket.listen(1024).map_err(io)?;
    socket.set_nonblocking(true).map_err(io)?;
    Ok(socket.into())
}

impl Server {
    /// A server with `config` (changeable until `listen`) sending its events
    /// to `handler`.
    pub fn new(config: Config, handler: Arc<dyn Handler>) -> Server {
        let inner = Inner {
            events: Events::new(handler),
            config: OnceLock::new(),
            pending_config: Mutex::new(config),
            registry: Registry::new(),
            topics: Topics::default(),
            counters: Counters::default(),
            http: Default::default(),
            next_id: AtomicU64::new(1),
            slots: AtomicUsize::new(0),
            open: Mutex::new(0),
            open_changed: Condvar::new(),
            started: Instant::now(),
            clock_ms: AtomicU64::new(0),
            state: AtomicU8::new(NEW),
            local_addr: OnceLock::new(),
            background: Mutex::new(Vec::new()),
            io: Mutex::new(None),
            close_lock: Mutex::new(()),
            tls: RwLock::new(None),
            backplane: OnceLock::new(),
            budget: Arc::new(Budget::default()),
        };
        Server { handle: ServerHandle { inner: Arc::new(inner) } }
    }

    /// A handle for other threads and for callbacks.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Changes options, returning what `f` returns; only before `listen`
    /// (else [`Error::State`], and `f` does not run).
    pub fn update_config<R>(&self, f: impl FnOnce(&mut Config) -> R) -> Result<R, Error> {
        if self.inner.state.load(Ordering::SeqCst) != NEW {
            return Err(Error::State("options can only be changed before listen".into()));
        }
        Ok(f(&mut self.inner.pending_config.lock()))
    }

    /// Binds `host:port` (port 0 picks a free one) and starts serving.
    /// Bind errors come back from this call. Returns the bound address.
    pub fn listen(&self, host: &str, port: u16) -> Result<SocketAddr, Error> {
        let inner = &self.inner;
        match inner.state.load(Ordering::SeqCst) {
            NEW => {}
            LISTENING => return Err(Error::State("listen was already called".into())),
            _ => return Err(Error::State("the server is closed".into())),
        }
        let config = inner.pending_config.lock().clone();
        config.validate()?;
        let ip = parse_host(host)?;
        let std_listener = bind(SocketAddr::new(ip, port))?;
        let local = std_listener.local_addr().map_err(|e| Error::Io(e.to_string()))?;
        let queue = match config.event_queue {
            true => Some(Arc::new(EventQueue::new(
                config.event_queue_bytes,
                config.event_queue_events,
                inner.budget.clone(),
            )?)),
            false => None,
        };
        let io = IoThreads::start(config.threads, Arc::as_ptr(inner) as usize, config.event_queue)?;
        let backplane = match &config.backplane {
            Some(bp) => Some(crate::backplane::start(bp.clone(), &self.handle(), &io.handles()[0].0)?),
            None => None,
        };
        if inner.state.compare_exchange(NEW, LISTENING, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Err(Error::State("listen was already called".into()));
        }
        if let Some(tls) = &config.tls {
            if let Some(w) = &tls.validity_warning {
                self.log_with(&config, LogLevel::Warn, w);
            }
            *inner.tls.write() = Some(tls.clone());
        }
        if let Some(queue) = queue {
            inner.events.use_queue(queue);
        }
        inner.budget.set_limit(config.memory_budget);
        let _ = inner.config.set(config.clone());
        let _ = inner.local_addr.set(local);
        let threads = io.handles();
        let main = threads[0].0.clone();
        let listener = {
            let _enter = main.enter();
            TcpListener::from_std(std_listener).map_err(|e| Error::Io(e.to_string()))?
        };
        let mut background = inner.background.lock();
        background.push(main.spawn(accept_loop(self.handle(), listener, threads)));
        if let Some((bp, task)) = backplane {
            let watched = bp.clone();
            inner.topics.watch(Box::new(move |topic| watched.topic_changed(topic)));
            self.log_with(&config, LogLevel::Info, &format!("backplane {} joined", bp.config.shown()));
            let _ = inner.backplane.set(bp);
            background.push(task);
        }
        let tick = [config.ping_interval, config.idle_timeout]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min()
            .map(|d| (d / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)));
        if let Some(tick) = tick {
            background.push(main.spawn(sweeper(self.handle(), tick)));
        }
        drop(background);
        *inner.io.lock() = Some(io);
        let scheme = if config.tls.is_some() { "wss" } else { "ws" };
        self.log(LogLevel::Info, &format!("listening on {scheme}://{local}"));
        Ok(local)
    }

    /// Closes the server: stops accepting, sends close 1001 to every client
    /// after what is already queued for it, waits up to `grace` for the
    /// close handshakes, drops the rest (their close is reported as 1006),
    /// and returns when no callback can run any more. Calling it again is
    /// fine. Called from one of this server's callbacks, it only starts the
    /// close and returns; the rest happens when the `Server` is dropped.
    pub fn close(&self, grace: Duration) {
        let inner = &self.inner;
        start_close(inner);
        if !inner.on_io_thread() {
            finish_close(inner, grace);
        }
    }
}

/// Stops accepting and asks every connection to close (idempotent).
fn start_close(inner: &Arc<Inner>) {
    if inner.state.compare_exchange(NEW, CLOSED, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        return;
    }
    if inner.state.compare_exchange(LISTENING, CLOSING, Ordering::SeqCst, Ordering::SeqCst).is_err() {
        return;
    }
    inner.registry.stop_accepting();
    for task in inner.background.lock().drain(..) {
        task.abort();
    }
    inner.registry.for_each(&mut |c| {
        let _ = c.close(1001, "server shutting down");
    });
}

/// Waits for the connections (bounded by `grace`, then kills them) and
/// shuts the runtime down; concurrent calls wait for the first. Must not
/// run on one of this server's threads.
fn finish_close(inner: &Arc<Inner>, grace: Duration) {
    let _serial = inner.close_lock.lock();
    if inner.state.load(Ordering::SeqCst) == CLOSED {
        return;
    }
    let wait = |limit: Duration| {
        let deadline = Instant::now() + limit;
        let mut open = inner.open.lock();
        while *open > 0 {
            if inner.open_changed.wait_until(&mut open, deadline).timed_out() {
                break;
            }
        }
        *open == 0
    };
    if !wait(grace) {
        inner
            .registry
            .for_each(&mut |c| c.kill(Error::Timeout("server closed before the close handshake finished".into())));
        wait(Duration::from_secs(10));
    }
    let io = inner.io.lock().take();
    if let Some(mut io) = io {
        io.stop();
    }
    inner.state.store(CLOSED, Ordering::SeqCst);
    if let Some(queue) = inner.events.queue() {
        queue.finish();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let inner = self.inner.clone();
        start_close(&inner);
        if inner.on_io_thread() {
            // Dropped inside one of our own callbacks: finish elsewhere.
            std::thread::spawn(move || finish_close(&inner, Duration::from_secs(1)));
        } else {
            finish_close(&inner, Duration::from_secs(1));
        }
    }
}

/// Accepts clients and deals them out to the I/O threads in turn.
/// What the accept loop hands a new connection's task.
struct Accepted {
    slot: Slot,
    peer: SocketAddr,
    /// Over max_connections: answer the handshake with 503.
    over_limit: bool,
    /// The wake list of the I/O thread it runs on.
    wakes: Arc<RemoteWakes>,
}

async fn accept_loop(
    server: ServerHandle,
    listener: TcpListener,
    threads: Vec<(tokio::runtime::Handle, Arc<RemoteWakes>)>,
) {
    let mut turn = 0usize;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let inner = &server.inner;
                let taken = inner.slots.fetch_add(1, Ordering::Relaxed) + 1;
                let slot = Slot(server.clone());
                let max = server.config().max_connections;
                if taken > max + max / 4 + 64 {
                    server.log(LogLevel::Warn, &format!("{peer}: dropped, far over max_connections ({max})"));
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let index = turn % threads.len();
                turn = turn.wrapping_add(1);
                let (thread, wakes) = &threads[index];
                let stream = if index == 0 {
                    stream // the accept loop's own thread
                } else {
                    // Re-register the socket with the target thread's reactor.
                    let _enter = thread.enter();
                    match stream.into_std().and_then(TcpStream::from_std) {
                        Ok(s) => s,
                        Err(e) => {
                            server.log(LogLevel::Warn, &format!("{peer}: cannot hand over to an I/O thread: {e}"));
                            continue;
                        }
                    }
                };
                let accepted = Accepted { slot, peer, over_limit: taken > max, wakes: wakes.clone() };
                match inner.tls.read().clone() {
                    None => thread.spawn(serve_plain(accepted, stream)),
                    Some(tls) => thread.spawn(serve_tls(tls, accepted, stream)),
                };
            }
            Err(e) => {
                server.log(LogLevel::Error, &format!("accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A connection's task: its handshake, boxed (freed once done), then the
/// open connection in place — for wss://, and for ws:// where the I/O
/// thread's driver cannot take it (a ws:// connection otherwise ends its
/// task after the handshake, see `serve_plain`). Written by hand: an async
/// fn awaiting the handshake and then the connection kept both in its state
/// (memory per idle connection is a design target).
enum ConnTask<S, F> {
    Handshake(Pin<Box<F>>),
    Open(Connection<S, Slot>),
}

impl<S, F> Future for ConnTask<S, F>
where
    S: crate::connection::Stream,
    F: Future<Output = Option<Connection<S, Slot>>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match this {
                ConnTask::Handshake(handshake) => match ready!(handshake.as_mut().poll(cx)) {
                    Some(conn) => *this = ConnTask::Open(conn),
                    None => return Poll::Ready(()),
                },
                ConnTask::Open(conn) => return Pin::new(conn).poll(cx),
            }
        }
    }
}

/// A plain ws:// connection's task: its handshake, then the open
/// connection goes to the I/O thread's driver (src/driver.rs), or stays
/// this task where the driver cannot take it.
fn serve_plain(accepted: Accepted, stream: TcpStream) -> impl Future<Output = ()> + Send {
    ConnTask::Handshake(Box::pin(async move {
        let deadline = tokio::time::Instant::now() + accepted.slot.server().config().handshake_timeout;
        let Opened { stream, shared, slot, reader, leftover } =
            open_websocket(accepted, stream, deadline, None).await?;
        if let Some(raw) = crate::driver::take_over(&stream, &shared) {
            drop(stream); // tokio forgets the socket; the driver watches its copy
            let fd = raw.fd();
            let conn = Connection::new(raw, shared, slot, reader, leftover);
            conn.allow_direct_writes(fd);
            crate::driver::adopt(crate::driver::Conn::Plain(conn));
            return None;
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let conn = Connection::new(stream, shared, slot, reader, leftover);
        conn.allow_direct_writes(fd);
        Some(conn)
    }))
}

/// A wss:// connection's task: TLS, then as `serve_plain`.
fn serve_tls(tls: Tls, accepted: Accepted, stream: TcpStream) -> impl Future<Output = ()> + Send {
    ConnTask::Handshake(Box::pin(async move {
        let server = accepted.slot.server().clone();
        let peer = accepted.peer;
        let deadline = tokio::time::Instant::now() + server.config().handshake_timeout;
        let stream = match tokio::time::timeout_at(deadline, TlsStream::accept(tls.config, stream)).await {
            Err(_) => {
                server.log(LogLevel::Info, &format!("{peer}: TLS handshake timed out"));
                return None;
            }
            Ok(Err((e, tcp))) => {
                let why = crate::tls_refusal::explain(&e);
                server.log(LogLevel::Warn, &format!("{peer}: TLS handshake failed: {why}"));
                crate::tls_stream::close_after_refusal(tcp).await;
                return None;
            }
            Ok(Ok(accepted)) => accepted,
        };
        let (stream, subject) = stream;
        let Opened { stream, shared, slot, reader, leftover } =
            open_websocket(accepted, stream, deadline, subject).await?;
        // As in serve_plain, but no direct writes: bytes go out through TLS.
        if let Some(raw) = crate::driver::take_over(stream.io(), &shared) {
            let (stream, tcp) = stream.with_io(raw);
            drop(tcp); // tokio forgets the socket; the driver watches its copy
            let conn = Connection::new(stream, shared, slot, reader, leftover);
            crate::driver::adopt(crate::driver::Conn::Tls(Box::new(conn)));
            return None;
        }
        Some(Connection::new(stream, shared, slot, reader, leftover))
    }))
}

/// An accepted WebSocket, for its connection to be built on: the host saw
/// its open, so it must become a Connection (which reports the close).
struct Opened<S> {
    stream: S,
    shared: Arc<ConnShared>,
    slot: Slot,
    reader: Reader,
    leftover: Vec<u8>,
}

/// The WebSocket handshake over TCP or TLS; the accepted connection, or
/// None when the handshake failed or was refused.
async fn open_websocket<S: AsyncRead + AsyncWrite + Unpin>(
    accepted: Accepted,
    mut stream: S,
    deadline: tokio::time::Instant,
    client_subject: Option<String>,
) -> Option<Opened<S>> {
    let Accepted { slot, peer, over_limit, wakes } = accepted;
    let server = slot.server().clone();
    let cfg = server.config();
    let (http, mut buffered, mut served, mut deadline) = (cfg.serves_http(), Vec::new(), 0, deadline);
    let mut upgrade = loop {
        let read = handshake::read_request(&mut stream, peer, &cfg.subprotocols, http, std::mem::take(&mut buffered));
        match tokio::time::timeout_at(deadline, read).await {
            Err(_) if served > 0 => return None, // a keep-alive connection left idle
            Err(_) => {
                server.log(LogLevel::Info, &format!("{peer}: handshake timed out"));
                return None;
            }
            Ok(Err(Refusal::Io(e))) => {
                server.log(LogLevel::Debug, &format!("{peer}: connection lost during handshake: {e}"));
                return None;
            }
            Ok(Err(Refusal::Status(status, why))) => {
                server.log(LogLevel::Warn, &format!("{peer}: handshake refused with {status}: {why}"));
                refuse(&server, &mut stream, handshake::refusal(status, why), cfg.close_timeout).await;
                return None;
            }
            Ok(Ok(Incoming::Http(request))) => {
                served += 1;
                let last = served >= cfg.http_max_requests;
                buffered = crate::http::serve::answer(&server, &mut stream, request, last).await?;
                deadline = tokio::time::Instant::now() + cfg.http_idle_timeout;
            }
            Ok(Ok(Incoming::Upgrade(_))) if server.inner.budget.is_over() => {
                server.log(LogLevel::Warn, &format!("{peer}: refused with 503: memory budget reached"));
                let answer = handshake::refusal(503, "server memory budget reached");
                refuse(&server, &mut stream, answer, cfg.close_timeout).await;
                return None;
            }
            Ok(Ok(Incoming::Upgrade(_))) if over_limit => {
                server.log(LogLevel::Warn, &format!("{peer}: refused with 503: max_connections reached"));
                refuse(&server, &mut stream, handshake::refusal(503, "too many connections"), cfg.close_timeout).await;
                return None;
            }
            Ok(Ok(Incoming::Upgrade(mut up))) => {
                if let Some(status) = cfg.refuses(&up.request) {
                    let why = if status == 404 { "no WebSocket at this path" } else { "origin not allowed" };
                    server.log(LogLevel::Info, &format!("{peer}: refused with {status}: {why}"));
                    refuse(&server, &mut stream, handshake::refusal(status, why), cfg.close_timeout).await;
                    return None;
                }
                up.request.client_subject = client_subject;
                break up;
            }
        }
    };
    let inner = &server.inner;
    let id = inner.new_id();
    let budget = (cfg.memory_budget > 0).then(|| inner.budget.clone());
    let shared = Arc::new(ConnShared::new(id, inner.now_ms(), wakes, budget));
    *inner.open.lock() += 1;
    if !inner.registry.insert(shared.clone()) {
        inner.connection_ended();
        refuse(&server, &mut stream, handshake::refusal(503, "server is shutting down"), cfg.close_timeout).await;
        return None;
    }
    let verdict = {
        let _current = CurrentConn::enter(&shared, None);
        inner.events.open(&server, &shared, &upgrade.request)
    };
    let verdict = match verdict {
        Verdict::Later => match await_answer(&shared, deadline).await {
            Ok(v) => v,
            Err(why) => {
                // The host saw the open: it gets the close that ends it.
                server.log(LogLevel::Warn, &format!("{peer}: connection {id} refused with 503: {why}"));
                inner.forget(&shared);
                inner.events.close(&server, &shared, 1006, why);
                inner.connection_ended();
                refuse(&server, &mut stream, handshake::refusal(503, why), cfg.close_timeout).await;
                return None;
            }
        },
        v => v,
    };
    match verdict {
        Verdict::Accept(Some(sub)) => upgrade.request.subprotocol = Some(sub),
        Verdict::Accept(None) | Verdict::Later => {}
        Verdict::Refuse(status) => {
            let extra = shared.finish_answer();
            inner.forget(&shared);
            inner.connection_ended();
            let status = if (400..=599).contains(&status) { status } else { 500 };
            server.log(LogLevel::Info, &format!("{peer}: refused by the host with {status}"));
            let mut answer = match extra.body {
                Some(body) => Response { status, headers: Vec::new(), body },
                None => handshake::refusal(status, "refused"),
            };
            answer.headers.extend(extra.headers);
            if !answer.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("Content-Type")) {
                answer.headers.push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
            }
            refuse(&server, &mut stream, answer, cfg.close_timeout).await;
            return None;
        }
    }
    let mut extra = shared.finish_answer();
    let deflate = match cfg.deflate {
        true => deflate::negotiate(upgrade.request.header_values("Sec-WebSocket-Extensions"), cfg.deflate_context),
        false => None,
    };
    let deflate = deflate.map(|(params, answer)| {
        extra.headers.push(("Sec-WebSocket-Extensions".into(), answer));
        shared.set_deflate(ConnDeflate::new(params));
        params
    });
    Counters::add(&inner.counters.handshakes_accepted, 1);
    shared.queue_handshake_answer(Bytes::from(handshake::accept_response(&upgrade, &extra.headers)));
    Some(Opened { stream, shared, slot, reader: Reader::new(deflate), leftover: upgrade.leftover })
}

/// Waits for the host's answer to an open (event mode), until the
/// handshake deadline; Err says why there is none.
async fn await_answer(conn: &ConnShared, deadline: tokio::time::Instant) -> Result<Verdict, &'static str> {
    match tokio::time::timeout_at(deadline, std::future::poll_fn(|cx| conn.poll_answer(cx))).await {
        Ok(Verdict::Refuse(503)) if conn.is_closed() => Err("server is shutting down"),
        Ok(v) => Ok(v),
        Err(_) => Err("the host did not answer the open within the handshake timeout"),
    }
}

async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    server: &ServerHandle,
    stream: &mut S,
    answer: Response,
    limit: Duration,
) {
    Counters::add(&server.inner.counters.handshakes_refused, 1);
    let answer = answer.encode(false, false);
    let _ = tokio::time::timeout(limit, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
}

/// Advances the server clock; pings quiet connections and drops dead ones.
async fn sweeper(server: ServerHandle, tick: Duration) {
    let cfg = server.config();
    let ping_ms = cfg.ping_interval.as_millis() as u64;
    let idle_ms = cfg.idle_timeout.as_millis() as u64;
    let ping = Bytes::from_static(&[0x89, 0x00]);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let inner = &server.inner;
        let now = inner.started.elapsed().as_millis() as u64;
        inner.clock_ms.store(now, Ordering::Relaxed);
        inner.registry.for_each(&mut |c| {
            let quiet = now.saturating_sub(c.last_rx.load(Ordering::Relaxed));
            if idle_ms > 0 && quiet >= idle_ms {
                c.kill(Error::Timeout(format!("nothing received for {idle_ms} ms")));
            } else if ping_ms > 0
                && quiet >= ping_ms
                && (now as u32).wrapping_sub(c.last_ping.load(Ordering::Relaxed)) as u64 >= ping_ms
            {
                c.last_ping.store(now as u32, Ordering::Relaxed);
                c.send_control(ping.clone());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::connection::Connection;
    use std::mem::size_of;

    /// Memory per idle connection is a design target, and tokio's task cell
    /// (header, scheduler, id, future, trailer: about 100 bytes around the
    /// future) is aligned to 128 bytes: an open connection of at most 152
    /// bytes takes a 256-byte cell, 153 takes 384 (measured with dhat). The
    /// stream itself is tokio's (32 bytes in release builds, more with debug
    /// assertions): what is ours must stay within 120 bytes. Over wss://
    /// (a connection the driver did not take) the TLS stream's session is
    /// boxed, so the cell is 384 bytes rather than rustls's 1,408.
    #[test]
    fn an_open_connection_fits_its_task_cell() {
        let stream = size_of::<tokio::net::TcpStream>();
        let plain = size_of::<Connection<tokio::net::TcpStream, super::Slot>>() - stream;
        assert!(plain <= 120, "{plain} bytes besides the stream");
        let tls = size_of::<Connection<crate::tls_stream::TlsStream, super::Slot>>() - stream;
        assert!(tls <= 184, "{tls} bytes besides the TCP stream");
    }
}
