//! One driver per I/O thread for its open ws:// connections, instead of a
//! tokio task and a tokio registration each. Memory per idle connection is
//! a design target: a task cell is 256 bytes and tokio's per-socket
//! readiness state (`ScheduledIo`) another 256, both 128-byte aligned. Here
//! an open connection is one slab entry; its socket is registered, edge
//! triggered, in the thread's own epoll set, which is the one file tokio
//! watches for the driver. The handshake still runs as a tokio task (its
//! state is freed once it is done); a wss:// connection comes here too
//! once its TLS and WebSocket handshakes are done, its TLS state boxed.
//!
//! A connection is polled as the future it is, with a waker made from its
//! `ConnShared` (no allocation): woken on this thread it joins the ready
//! list; woken from another thread it goes through the thread's
//! [`RemoteWakes`], which wakes it again from here.
use crate::connection::Connection;
use crate::outbox::ConnShared;
use crate::server::Slot;
use crate::tls_stream::TlsStream;
use crate::wakes::RemoteWakes;
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Epoll events taken per call.
const EVENTS: usize = 256;
/// Connection polls per turn before the driver lets the thread's other
/// tasks (handshakes, timers) run.
const POLLS_PER_TURN: usize = 1024;

/// A connected socket in non-blocking mode, read and written directly:
/// Pending when the kernel says EAGAIN (the driver's epoll set reports
/// when that changes).
pub(crate) struct RawStream {
    fd: OwnedFd,
    /// In the epoll token with the slot: a stale event for a slot reused
    /// since is recognised. (Here, not beside the connection in the slab:
    /// it packs with the fd.)
    generation: u32,
    /// The socket was empty at the last read (it came back short, or with
    /// EAGAIN): the next read is skipped until the epoll set reports the
    /// socket again, since new input is a new edge. One read(2) per
    /// message instead of a second that finds nothing.
    drained: bool,
    /// The epoll set reported the peer's end (RDHUP, HUP, ERR): no edge
    /// follows that, so reads are never skipped again (what is left is
    /// read, then the end or the error).
    hung_up: bool,
}

/// A system call's result as a poll: EAGAIN is Pending (the driver's epoll
/// set reports when that changes).
fn ready(r: io::Result<usize>) -> Poll<io::Result<usize>> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        r => Poll::Ready(r),
    }
}

impl AsyncRead for RawStream {
    #[inline(always)]
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.drained {
            return Poll::Pending;
        }
        // SAFETY: only written by read(2), and only what it reports is
        // marked initialised.
        let room = unsafe { buf.unfilled_mut() };
        let len = room.len();
        // SAFETY: the socket is ours, open while `self` is.
        match ready(unsafe { crate::sys::read(self.fd.as_raw_fd(), room) }) {
            Poll::Ready(Ok(n)) => {
                self.drained = !self.hung_up && n > 0 && n < len;
                // SAFETY: read(2) initialised the first n bytes.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                self.drained = !self.hung_up;
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for RawStream {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // SAFETY: the socket is ours, open while `self` is.
        ready(unsafe { crate::sys::send(self.fd.as_raw_fd(), buf, true) })
    }

    fn poll_write_vectored(self: Pin<&mut Self>, _: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        // SAFETY: as poll_write.
        ready(unsafe { crate::sys::sendmsg(self.fd.as_raw_fd(), bufs) })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: plain libc call on a socket we own.
        match unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) } {
            0 => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(io::Error::last_os_error())),
        }
    }
}

impl crate::connection::Stream for RawStream {
    fn read_would_wait(&self) -> bool {
        self.drained
    }
}

/// An open connection the driver polls: ws:// in its slab entry, wss://
/// boxed (its TLS state would make every entry larger).
pub(crate) enum Conn {
    Plain(Connection<RawStream, Slot>),
    Tls(Box<Connection<TlsStream<RawStream>, Slot>>),
}

impl Conn {
    fn shared(&self) -> &Arc<ConnShared> {
        match self {
            Conn::Plain(c) => c.shared(),
            Conn::Tls(c) => c.shared(),
        }
    }

    fn raw(&self) -> &RawStream {
        match self {
            Conn::Plain(c) => c.stream(),
            Conn::Tls(c) => c.stream().io(),
        }
    }

    fn raw_mut(&mut self) -> &mut RawStream {
        match self {
            Conn::Plain(c) => c.stream_mut(),
            Conn::Tls(c) => c.stream_mut().io_mut(),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Conn::Plain(c) => Pin::new(c).poll(cx),
            Conn::Tls(c) => poll_tls(c, cx),
        }
    }
}

/// A wss:// connection's poll, out of line: inlined beside the ws:// one,
/// it made the driver's loop about 100 instructions per echoed ws://
/// message dearer (bench-instructions: 1,390 before wss:// came to the
/// driver, 1,487 with both inlined).
#[inline(never)]
fn poll_tls(c: &mut Connection<TlsStream<RawStream>, Slot>, cx: &mut Context<'_>) -> Poll<()> {
    Pin::new(c).poll(cx)
}

/// What the thread's wakers and handshake tasks reach: the ready list, the
/// connections waiting to be adopted, and the driver task's own waker.
struct Local {
    ready: RefCell<Vec<u32>>,
    adopt: RefCell<Vec<Conn>>,
    task: RefCell<Option<Waker>>,
    /// The driver is polling connections (it will see the ready list).
    running: Cell<bool>,
    /// The wake list connections of this thread carry.
    wakes: Arc<RemoteWakes>,
}

thread_local! {
    static LOCAL: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
}

impl Local {
    fn schedule(&self, slot: u32) {
        self.ready.borrow_mut().push(slot);
        if !self.running.get() {
            if let Some(w) = self.task.borrow().as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

/// The driver's own handle on `stream`'s socket (a duplicate of its fd),
/// if this thread's driver runs and serves `shared`'s thread; the caller
/// then drops `stream` (tokio forgets its copy) and [`adopt`]s the
/// connection. None: it stays a tokio task (no driver, or no fd to spare).
pub(crate) fn take_over(stream: &tokio::net::TcpStream, shared: &ConnShared) -> Option<RawStream> {
    let here = LOCAL.with(|l| l.borrow().as_ref().is_some_and(|local| Arc::ptr_eq(&local.wakes, shared.wakes())));
    if !here {
        return None;
    }
    // SAFETY: plain libc call; the new fd is owned at once.
    let fd = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    // SAFETY: a new fd that nothing else owns.
    (fd >= 0).then(|| RawStream {
        fd: unsafe { OwnedFd::from_raw_fd(fd) },
        generation: 0,
        drained: false,
        hung_up: false,
    })
}

impl RawStream {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Hands an open connection on a [`take_over`] socket to this thread's
/// driver, which polls it first thing (the handshake answer is queued).
pub(crate) fn adopt(conn: Conn) {
    LOCAL.with(|l| {
        if let Some(local) = l.borrow().as_ref() {
            local.adopt.borrow_mut().push(conn);
            if let Some(w) = local.task.borrow().as_ref() {
                w.wake_by_ref();
            }
        }
        // Otherwise (the driver ended meanwhile: the runtime is shutting
        // down) the connection is dropped here and its close reported.
    })
}

/// A connection's waker: a weak count on its `ConnShared` (no allocation
/// of its own; weak, because the ConnShared keeps its own waker in its
/// AtomicWaker, and a strong count there would never let it go).
static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_waker, wake, wake_by_ref, drop_waker);

/// The waker's Weak, not to be dropped (the waker keeps its count).
///
/// SAFETY: `data` must be a waker's data pointer: Weak::into_raw of a
/// ConnShared, its count still the waker's.
unsafe fn weak(data: *const ()) -> ManuallyDrop<Weak<ConnShared>> {
    ManuallyDrop::new(unsafe { Weak::from_raw(data as *const ConnShared) })
}

unsafe fn clone_waker(data: *const ()) -> RawWaker {
    // SAFETY: as `weak`; the clone's count is the new waker's.
    let clone = Weak::clone(unsafe { &weak(data) });
    RawWaker::new(Weak::into_raw(clone) as *const (), &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: as `weak`; this waker's count is given back after.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: as `weak`.
    let Some(shared) = unsafe { weak(data) }.upgrade() else { return };
    // SAFETY: it is in its Arc (upgraded from the waker's Weak).
    unsafe { wake_held(&shared) }
}

/// Wakes a connection the driver holds, from any thread: on the driver's
/// thread it joins the ready list; from another it goes on the thread's
/// [`RemoteWakes`] as a waker of its own. Nothing if the driver no longer
/// holds it. [`ConnShared::wake`] calls it directly: a connection on the
/// driver has no waker to register at every poll (src/connection.rs).
///
/// SAFETY: `shared` must live in an `Arc` (the driver's entry holds one).
pub(crate) unsafe fn wake_held(shared: &ConnShared) {
    let Some(slot) = shared.driver_slot() else { return };
    if shared.wakes().is_own() {
        if shared.mark_scheduled() {
            LOCAL.with(|l| {
                if let Some(local) = l.borrow().as_ref() {
                    local.schedule(slot);
                }
            });
        }
    } else {
        let data = shared as *const ConnShared as *const ();
        // SAFETY: `data` is where the Arc keeps it, as Weak::into_raw
        // would give; the clone holds a count of its own.
        let waker = unsafe { Waker::from_raw(clone_waker(data)) };
        shared.wakes().defer(waker);
    }
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: as `weak`: gives back the count clone_waker took.
    drop(ManuallyDrop::into_inner(unsafe { weak(data) }));
}

/// The driver of one I/O thread: its main future (io_threads), for its life.
pub(crate) async fn run(wakes: Arc<RemoteWakes>) {
    // SAFETY: plain libc call; the fd is owned at once.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epoll < 0 {
        // Connections stay tasks on this thread (take_over says no).
        return std::future::pending().await;
    }
    // SAFETY: epoll_create1 returned a new fd that nothing else owns; the
    // AsyncFd owns it (as an OwnedFd) for its whole life.
    let registered = unsafe { AsyncFd::register_with_interest(OwnedFd::from_raw_fd(epoll), Interest::READABLE) };
    let epoll = match registered {
        Ok(fd) => fd,
        Err(_) => return std::future::pending().await,
    };
    let local = Rc::new(Local {
        ready: RefCell::new(Vec::new()),
        adopt: RefCell::new(Vec::new()),
        task: RefCell::new(None),
        running: Cell::new(false),
        wakes,
    });
    LOCAL.with(|l| *l.borrow_mut() = Some(local.clone()));
    let events = Vec::with_capacity(EVENTS);
    let mut driver = Driver { epoll, local, conns: Slab::new(), generation: 0, events, batch: Vec::new() };
    // Unconstrained: tokio's per-task budget would make the connections'
    // timers look pending after 128 polls; the driver bounds its own turn.
    tokio::task::unconstrained(std::future::poll_fn(|cx| driver.poll(cx))).await
}

struct Driver {
    epoll: AsyncFd<OwnedFd>,
    local: Rc<Local>,
    conns: Slab<Conn>,
    generation: u32,
    events: Vec<libc::epoll_event>,
    /// The ready list's other buffer (see `poll`).
    batch: Vec<u32>,
}

impl Driver {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut task = self.local.task.borrow_mut();
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let mut polls = 0;
        loop {
            self.take_adopted();
            self.take_events(cx);
            // Two lists in turn: wakes during this batch go to the other.
            let mut batch = std::mem::take(&mut self.batch);
            std::mem::swap(&mut batch, &mut *self.local.ready.borrow_mut());
            if batch.is_empty() {
                self.batch = batch;
                return Poll::Pending;
            }
            self.local.running.set(true);
            for &slot in &batch {
                self.poll_conn(slot as usize);
            }
            self.local.running.set(false);
            polls += batch.len();
            batch.clear();
            self.batch = batch;
            if polls >= POLLS_PER_TURN {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    fn take_adopted(&mut self) {
        let adopted = std::mem::take(&mut *self.local.adopt.borrow_mut());
        for mut conn in adopted {
            let fd = conn.raw().fd();
            self.generation = self.generation.wrapping_add(1);
            let generation = self.generation;
            let entry = self.conns.vacant_entry();
            let slot = entry.key() as u32;
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
                u64: (u64::from(generation) << 32) | u64::from(slot),
            };
            // SAFETY: plain libc call on fds we own (the socket lives in `conn`).
            if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
                // Not watched, it could never be woken by its socket: it
                // is dropped (the host gets its close).
                drop(conn);
                continue;
            }
            conn.shared().set_driver_slot(Some(slot));
            // Wakes reach the driver directly from now on (`wake_held`);
            // this waker serves one that saw no slot yet (the connection's
            // first poll, just below, settles what came before).
            let data = Arc::as_ptr(conn.shared()) as *const ();
            // SAFETY: as in `poll_conn`; the new waker holds its own count.
            conn.shared().waker.register(&unsafe { Waker::from_raw(clone_waker(data)) });
            conn.raw_mut().generation = generation;
            // First poll: the handshake answer and any frames sent with it.
            if entry.insert(conn).shared().mark_scheduled() {
                self.local.ready.borrow_mut().push(slot);
            }
        }
    }

    /// Takes what the thread's epoll set reports, asking it directly (no
    /// system call of tokio's, no park): after a batch the replies have
    /// often brought new input already, and a park and wake-up through
    /// tokio costs more than a thousand instructions. Only when the set is
    /// empty does tokio watch it for the next event (see `arm`).
    fn take_events(&mut self, cx: &mut Context<'_>) {
        // SAFETY: the buffer has room for EVENTS entries; epoll writes at most that many.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), self.events.as_mut_ptr(), EVENTS as i32, 0) };
        if n <= 0 {
            self.arm(cx);
            return;
        }
        // SAFETY: epoll_wait initialised the first n entries.
        unsafe { self.events.set_len(n as usize) };
        let mut ready = self.local.ready.borrow_mut();
        for ev in &self.events {
            let token = ev.u64;
            let (slot, generation) = (token as u32 as usize, (token >> 32) as u32);
            if let Some(conn) = self.conns.get_mut(slot).filter(|c| c.raw().generation == generation) {
                let stream = conn.raw_mut();
                stream.drained = false;
                stream.hung_up |= ev.events & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
                if conn.shared().mark_scheduled() {
                    ready.push(slot as u32);
                }
            }
        }
    }

    /// The set is empty: clears the readiness tokio recorded for it (what
    /// it reported was taken by our own calls) and registers this task for
    /// its next event. Tokio's reactor runs on this thread, between polls,
    /// so nothing it records is cleared unseen: an event after our empty
    /// `epoll_wait` is a new edge it reports at its next turn.
    fn arm(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Ok(mut guard)) = self.epoll.poll_read_ready(cx) {
            guard.clear_ready();
        }
    }

    /// Polls one connection; removes it once it is done, or if it panicked
    /// (a Rust handler's panic ends its connection, not the thread's).
    fn poll_conn(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let shared = conn.shared();
        shared.clear_scheduled();
        // The waker for this poll borrows the slab's strong count instead
        // of taking a weak count of its own (an atomic increment and
        // decrement per poll): it is never dropped, and only lent out, so
        // whoever keeps it clones it (clone_waker takes a count then).
        let data = Arc::as_ptr(shared) as *const ();
        // SAFETY: `data` points at the ConnShared as Weak::into_raw would;
        // the ManuallyDrop keeps drop_waker from giving back a count it
        // never took.
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) });
        let mut cx = Context::from_waker(&waker);
        let done = match std::panic::catch_unwind(AssertUnwindSafe(|| conn.poll(&mut cx))) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(())) | Err(_) => true,
        };
        if done {
            let conn = self.conns.remove(slot);
            conn.shared().set_driver_slot(None);
            drop(conn);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        LOCAL.with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                *l = None;
            }
        });
        for conn in self.conns.drain() {
            conn.shared().set_driver_slot(None);
        }
    }
}
#[cfg(test)]
mod tests {
    use std::mem::size_of;

    /// Memory per idle connection is a design target: an open ws://
    /// connection is its slab entry here and its ConnShared (in a 176-byte
    /// glibc chunk with the Arc's counts, at most 152 bytes of its own).
    #[test]
    fn an_idle_connection_stays_small() {
        assert!(size_of::<super::Conn>() <= 120, "{}", size_of::<super::Conn>());
        let shared = size_of::<crate::outbox::ConnShared>();
        assert!(shared <= 152, "{shared}");
    }
}
