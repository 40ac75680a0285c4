//! The one place host events are produced. Each event goes either to the
//! host's [`Handler`] (called on the I/O thread) or, in event-queue mode,
//! into an [`EventQueue`] that the host drains from its own loop: two
//! deliveries of the same events, in the same order, with the same rules
//! (per connection: open first, close exactly once and last).
use crate::budget::Budget;
use crate::outbox::ConnShared;
use crate::{ConnId, Error, Handler, Kind, LogLevel, Request, ServerHandle};
use parking_lot::{Condvar, Mutex};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// An event as the queue hands it to the host.
#[derive(Debug)]
pub enum Event {
    /// A client's handshake request. Unless `auto_accept` is on, answer it
    /// with [`ServerHandle::accept`] or [`ServerHandle::refuse`] within the
    /// handshake timeout (else it is refused with 503 and a `Close` follows).
    Open {
        /// The new connection.
        conn: ConnId,
        /// An owned copy of the request.
        request: Request,
    },
    /// A whole message.
    Message {
        /// The connection it came from.
        conn: ConnId,
        /// The payload (text is valid UTF-8).
        data: Vec<u8>,
        /// Text or binary.
        kind: Kind,
    },
    /// The connection is gone: once per `Open`, last.
    Close {
        /// The connection.
        conn: ConnId,
        /// As [`Handler::on_close`].
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Something went wrong on a connection; a `Close` follows.
    Error {
        /// The connection.
        conn: ConnId,
        /// What went wrong.
        error: Error,
    },
    /// The connection's send queue fell back under its limit.
    Drain {
        /// The connection.
        conn: ConnId,
    },
    /// A plain HTTP request for the host (`http_handler`): answer with
    /// [`ServerHandle::respond`] within the handshake timeout (else 503).
    Http {
        /// The request's id (from the connections' sequence).
        id: ConnId,
        /// The request, with its body.
        request: Request,
    },
    /// A log line.
    Log {
        /// Its severity.
        level: LogLevel,
        /// The text.
        message: String,
    },
}

impl Event {
    /// The connection the event is about (0 for `Log`).
    pub fn conn(&self) -> ConnId {
        match self {
            Event::Open { conn, .. }
            | Event::Message { conn, .. }
            | Event::Close { conn, .. }
            | Event::Error { conn, .. }
            | Event::Drain { conn } => *conn,
            Event::Http { id, .. } => *id,
            Event::Log { .. } => 0,
        }
    }

    /// What the event costs against the queue's byte limit.
    fn cost(&self) -> usize {
        const BASE: usize = 64;
        BASE + match self {
            Event::Message { data, .. } => data.len(),
            Event::Open { request, .. } | Event::Http { request, .. } => {
                request.body().len() + request.headers().map(|(n, v)| n.len() + v.len() + 32).sum::<usize>()
            }
            Event::Close { reason, .. } => reason.len(),
            Event::Log { message, .. } => message.len(),
            Event::Error { .. } | Event::Drain { .. } => 0,
        }
    }
}

/// An event taken from the queue, with the connection's user data as it
/// is when the event is taken.
#[derive(Debug)]
pub struct Polled {
    /// The event.
    pub event: Event,
    /// The connection's user data ([`ServerHandle::set_user_data`]); 0 for
    /// log lines and connections that never had any.
    pub user_data: usize,
}

/// The host's answer to an open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accept, with this subprotocol instead of the server's own choice.
    Accept(Option<String>),
    /// Refuse with this HTTP status.
    Refuse(u16),
    /// The host answers later (event mode).
    Later,
}

struct Queue {
    /// Each event with its connection and its cost (computed once).
    events: VecDeque<(Event, Option<Arc<ConnShared>>, usize)>,
    bytes: usize,
    /// No event can be added any more (the server is closed).
    finished: bool,
    /// The fd was made readable and not reset since.
    signalled: bool,
    /// An I/O thread will signal at the end of its batch.
    deferred: bool,
}

thread_local! {
    /// On an I/O thread: queues to signal once the thread's current batch
    /// of ready connections has run, and the task that does it.
    static TO_SIGNAL: RefCell<(Vec<Arc<EventQueue>>, Option<Waker>)> = const { RefCell::new((Vec::new(), None)) };
}

/// Runs on each I/O thread for its whole life: signals the queues that got
/// events during the batch of connections that just ran. Woken locally by
/// the first push, it runs after the connections already woken, so the
/// host is woken once per batch, not once per message (which, with both on
/// one core, would switch threads for every message).
pub(crate) async fn signal_batches() {
    std::future::poll_fn(|cx| {
        let queues = TO_SIGNAL.with(|t| {
            let mut t = t.borrow_mut();
            t.1 = Some(cx.waker().clone());
            std::mem::take(&mut t.0)
        });
        for q in queues {
            let mut state = q.queue.lock();
            state.deferred = false;
            if !state.events.is_empty() {
                q.signal(&mut state);
            }
        }
        Poll::<()>::Pending
    })
    .await
}

/// Leaves `queue`'s signal to this thread's batch signaller; false when
/// this is not an I/O thread (signal now).
fn defer_signal(queue: &Arc<EventQueue>) -> bool {
    TO_SIGNAL.with(|t| {
        let mut t = t.borrow_mut();
        let Some(waker) = t.1.clone() else { return false };
        if t.0.is_empty() {
            waker.wake();
        }
        t.0.push(queue.clone());
        true
    })
}

/// A bounded queue of events with an eventfd that is readable while
/// events wait. Pushing never blocks: when the queue is over its limits
/// the connections stop reading their sockets ([`EventQueue::poll_room`]),
/// so TCP pushes back on the clients instead of the queue growing.
pub(crate) struct EventQueue {
    queue: Mutex<Queue>,
    arrived: Condvar,
    fd: OwnedFd,
    max_bytes: usize,
    max_events: usize,
    full: AtomicBool,
    /// Connections waiting for room, woken once the host drains.
    waiting: Mutex<Vec<Waker>>,
    /// The server's memory budget, which counts the queued events' cost.
    budget: Arc<Budget>,
}

impl Drop for EventQueue {
    /// Events never taken are no longer held.
    fn drop(&mut self) {
        self.budget.release(self.queue.get_mut().bytes);
    }
}

impl EventQueue {
    pub fn new(max_bytes: usize, max_events: usize, budget: Arc<Budget>) -> Result<EventQueue, Error> {
        // SAFETY: eventfd takes no pointers; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::Io(format!("eventfd: {}", std::io::Error::last_os_error())));
        }
        Ok(EventQueue {
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                bytes: 0,
                finished: false,
                signalled: false,
                deferred: false,
            }),
            arrived: Condvar::new(),
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            max_bytes,
            max_events,
            full: AtomicBool::new(false),
            waiting: Mutex::new(Vec::new()),
            budget,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the fd readable and wakes a blocked taker (under the queue
    /// lock, so that a taker that empties the queue and resets the fd
    /// cannot interleave).
    fn signal(&self, q: &mut Queue) {
        if !q.signalled {
            q.signalled = true;
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
            unsafe { libc::write(self.fd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
        }
        self.arrived.notify_one();
    }

    /// Resets the fd to not readable (under the queue lock).
    fn unsignal(&self, q: &mut Queue) {
        if q.signalled {
            q.signalled = false;
            let mut n: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from our own eventfd.
            unsafe { libc::read(self.fd.as_raw_fd(), &mut n as *mut u64 as *mut libc::c_void, 8) };
        }
    }

    fn push(self: &Arc<Self>, event: Event, conn: Option<Arc<ConnShared>>) {
        let mut q = self.queue.lock();
        if q.finished {
            return;
        }
        let cost = event.cost();
        q.bytes += cost;
        self.budget.add(cost);
        q.events.push_back((event, conn, cost));
        if !q.signalled && !q.deferred {
            if defer_signal(self) {
                q.deferred = true;
            } else {
                self.signal(&mut q);
            }
        }
        if q.bytes >= self.max_bytes || q.events.len() >= self.max_events {
            self.full.store(true, Ordering::Release);
        }
    }

    /// Ready while the queue has room; otherwise registers `cx` to be woken
    /// once the host has drained it under its limits.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.full.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let mut waiting = self.waiting.lock();
        // Checked again under the lock `take` wakes under: no lost wake-up.
        if !self.full.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
            waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Takes the next event, waiting up to `timeout` (`None`: forever).
    /// `Ok(None)`: nothing arrived in time. `Err`: finished and empty.
    pub fn take(&self, timeout: Option<Duration>) -> Result<Option<Polled>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut q = self.queue.lock();
        loop {
            if let Some((event, conn, cost)) = q.events.pop_front() {
                q.bytes -= cost;
                self.budget.release(cost);
                if q.events.is_empty() && !q.finished {
                    self.unsignal(&mut q); // once finished it stays readable: poll says "closed"
                }
                let room = q.bytes < self.max_bytes && q.events.len() < self.max_events;
                drop(q);
                if room && self.full.load(Ordering::Acquire) {
                    let waiting = {
                        let mut w = self.waiting.lock();
                        self.full.store(false, Ordering::Release);
                        std::mem::take(&mut *w)
                    };
                    waiting.into_iter().for_each(Waker::wake);
                }
                let user_data = conn.map_or(0, |c| c.user_data());
                return Ok(Some(Polled { event, user_data }));
            }
            if q.finished {
                return Err(Error::Closed(0));
            }
            match deadline {
                None => self.arrived.wait(&mut q),
                Some(d) if Instant::now() < d => {
                    self.arrived.wait_until(&mut q, d);
                }
                Some(_) => return Ok(None),
            }
        }
    }

    /// No more events will come: takers get what is left, then `Err`.
    pub fn finish(&self) {
        let mut q = self.queue.lock();
        q.finished = true;
        self.signal(&mut q);
        self.arrived.notify_all();
    }
}

/// Where a server's events go.
pub(crate) struct Events {
    handler: Arc<dyn Handler>,
    /// Set at listen in event-queue mode.
    queue: OnceLock<Arc<EventQueue>>,
}

/// A message for the host's event queue: copied (out of line, so that the
/// callback path keeps a small stack frame).
#[inline(never)]
fn queue_message(q: &Arc<EventQueue>, conn: &Arc<ConnShared>, data: &[u8], kind: Kind) {
    // One spare byte, so the C layer can NUL-terminate in place.
    let mut copy = crate::pool::take(data.len() + 1);
    copy.extend_from_slice(data);
    q.push(Event::Message { conn: conn.id, data: copy, kind }, Some(conn.clone()))
}

impl Events {
    pub fn new(handler: Arc<dyn Handler>) -> Events {
        Events { handler, queue: OnceLock::new() }
    }

    /// Switches to queue delivery (at listen, before any event).
    pub fn use_queue(&self, queue: Arc<EventQueue>) {
        let _ = self.queue.set(queue);
    }

    pub fn queue(&self) -> Option<&Arc<EventQueue>> {
        self.queue.get()
    }

    /// Ready while the host can take more events (always, with callbacks).
    #[inline]
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        match self.queue.get() {
            Some(q) => q.poll_room(cx),
            None => Poll::Ready(()),
        }
    }

    pub fn open(&self, server: &ServerHandle, conn: &Arc<ConnShared>, request: &Request) -> Verdict {
        match self.queue.get() {
            Some(q) => {
                let auto = server.config().auto_accept;
                if !auto {
                    // Before the event is out, so an answer cannot come first.
                    conn.await_answer(request.offered_subprotocols().map(str::to_string).collect());
                }
                q.push(Event::Open { conn: conn.id, request: request.clone() }, Some(conn.clone()));
                if auto {
                    Verdict::Accept(None)
                } else {
                    Verdict::Later
                }
            }
            None => {
                // Open for answers during the call too: the handler may add
                // headers, answer at once, or defer the answer.
                conn.await_answer(request.offered_subprotocols().map(str::to_string).collect());
                match self.handler.on_open(server, conn.id, request) {
                    Ok(()) => conn.answer_after_open(),
                    Err(status) => Verdict::Refuse(status),
                }
            }
        }
    }

    #[inline]
    pub fn message(&self, server: &ServerHandle, conn: &Arc<ConnShared>, data: &[u8], kind: Kind) {
        match self.queue.get() {
            Some(q) => queue_message(q, conn, data, kind),
            None => self.handler.on_message(server, conn.id, data, kind),
        }
    }

    pub fn close(&self, server: &ServerHandle, conn: &Arc<ConnShared>, code: u16, reason: &str) {
        match self.queue.get() {
            Some(q) => q.push(Event::Close { conn: conn.id, code, reason: reason.to_string() }, Some(conn.clone())),
            None => self.handler.on_close(server, conn.id, code, reason),
        }
    }

    pub fn error(&self, server: &ServerHandle, conn: &Arc<ConnShared>, error: &Error) {
        match self.queue.get() {
            Some(q) => q.push(Event::Error { conn: conn.id, error: error.clone() }, Some(conn.clone())),
            None => self.handler.on_error(server, conn.id, error),
        }
    }

    pub fn drain(&self, server: &ServerHandle, conn: &Arc<ConnShared>) {
        match self.queue.get() {
            Some(q) => q.push(Event::Drain { conn: conn.id }, Some(conn.clone())),
            None => self.handler.on_drain(server, conn.id),
        }
    }

    /// A plain HTTP request for the host; `Some(status)` when it answered
    /// at once with just a status.
    pub fn http(&self, server: &ServerHandle, id: ConnId, request: &Request) -> Option<u16> {
        match self.queue.get() {
            Some(q) => {
                q.push(Event::Http { id, request: request.clone() }, None);
                None
            }
            None => self.handler.on_http(server, id, request),
        }
    }

    pub fn log(&self, level: LogLevel, message: &str) {
        match self.queue.get() {
            Some(q) => q.push(Event::Log { level, message: message.to_string() }, None),
            None => self.handler.on_log(level, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> Event {
        Event::Log { level: LogLevel::Info, message: "x".repeat(n) }
    }

    #[test]
    fn fd_is_readable_exactly_while_events_wait() {
        let q = Arc::new(EventQueue::new(1 << 20, 100, Arc::default()).unwrap());
        let readable = || {
            let mut p = libc::pollfd { fd: q.fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one live pollfd.
            unsafe { libc::poll(&mut p, 1, 0) == 1 }
        };
        assert!(!readable());
        q.push(log(1), None);
        q.push(log(2), None);
        assert!(readable());
        assert!(q.take(Some(Duration::ZERO)).unwrap().is_some());
        assert!(readable(), "one event still waits");
        assert!(q.take(Some(Duration::ZERO)).unwrap().is_some());
        assert!(!readable());
        assert!(q.take(Some(Duration::from_millis(20))).unwrap().is_none());
        q.push(log(3), None);
        q.finish();
        assert!(readable());
        assert!(q.take(None).unwrap().is_some(), "what was queued before the finish");
        assert!(readable(), "finished: readable for good, so the host polls and learns it");
        assert!(q.take(None).is_err(), "finished and empty");
        assert!(readable());
    }

    #[test]
    fn full_queue_holds_readers_until_drained_under_its_limits() {
        let q = Arc::new(EventQueue::new(1 << 20, 3, Arc::default()).unwrap());
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        struct Count(Arc<std::sync::atomic::AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let waker = Waker::from(Arc::new(Count(woken.clone())));
        let mut cx = Context::from_waker(&waker);
        for i in 0..3 {
            assert!(q.poll_room(&mut cx).is_ready());
            q.push(log(i), None);
        }
        assert!(q.poll_room(&mut cx).is_pending());
        assert!(q.poll_room(&mut cx).is_pending(), "registered once");
        q.take(None).unwrap();
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        assert!(q.poll_room(&mut cx).is_ready());
        let mut order = Vec::new();
        while let Ok(Some(p)) = q.take(Some(Duration::ZERO)) {
            if let Event::Log { message, .. } = p.event {
                order.push(message.len());
            }
        }
        assert_eq!(order, [1, 2], "first in, first out");
    }

    #[test]
    fn a_waiting_taker_wakes_on_push_and_on_finish() {
        let q = Arc::new(EventQueue::new(1 << 20, 100, Arc::default()).unwrap());
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            let first = q2.take(None).unwrap().is_some();
            let second = q2.take(None).is_err();
            (first, second)
        });
        std::thread::sleep(Duration::from_millis(30));
        q.push(log(1), None);
        std::thread::sleep(Duration::from_millis(30));
        q.finish();
        assert_eq!(t.join().unwrap(), (true, true));
    }
}
