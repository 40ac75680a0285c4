//! One connection's state shared with every thread that may send to it: the
//! queue of encoded frames, its byte count against the limits, and the
//! commands (close, fail, kill) another thread can give the connection.
//! The connection's own task writes to the socket; a sender on another
//! thread may too while nothing is queued (see [`ConnShared::send`]).
use crate::boxed_vec::{Boxed, BoxedVec};
use crate::budget::Budget;
use crate::config::OverflowPolicy;
use crate::cork::Cork;
use crate::events::Verdict;
use crate::outgoing::{ConnDeflate, Outgoing};
use crate::protocol::frame;
use crate::wakes::RemoteWakes;
use crate::{ConnId, Error};
use atomic_waker::AtomicWaker;
use bytes::{Buf, Bytes};
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::cell::Cell;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What a queued send reports when it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// Queued; the connection is under its send-queue limit.
    Queued,
    /// Queued, but the connection is now at or over its limit: stop sending
    /// to it until [`crate::Handler::on_drain`].
    Backpressure,
}

/// An instruction for the connection's task from another thread.
#[derive(Debug)]
pub(crate) enum Command {
    /// A close frame is queued: wait for the peer's close, then finish.
    Close,
    /// The connection is failed: flush, then finish with this code.
    Fail { code: u16, reason: String, error: Error },
    /// Drop the connection now, reporting 1006.
    Kill(Error),
}

/// What a send reports besides its result.
#[derive(Debug, Default)]
pub(crate) struct SendNotes {
    /// The first refusal since the queue last drained: the bytes queued
    /// then (for the host's WARN line).
    pub first_refusal: Option<usize>,
    /// Bytes the send wrote to the socket itself (see [`ConnShared::send`]).
    pub written: usize,
}

/// The send limits a push is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub soft: usize,
    pub hard: usize,
    pub overflow: OverflowPolicy,
}

#[derive(Default)]
pub(crate) struct Outbox {
    /// The frames not being written right now, in order (one pointer
    /// while the queue has no buffer).
    frames: Boxed<VecDeque<Bytes>>,
    /// The front frame was partly written (it is advanced past that part):
    /// it may not be discarded for a close.
    front_started: bool,
    /// Front frames moved out to be written with the lock released; they
    /// come back, or go, in [`Outbox::settle`].
    in_flight: usize,
    /// Bytes queued and not yet written (counted in `budget`).
    bytes: usize,
    /// The server's memory budget, which counts `bytes`.
    budget: Option<Arc<Budget>>,
    /// permessage-deflate, once negotiated (set before the 101 is queued).
    deflate: Option<Box<ConnDeflate>>,
    /// A send reported backpressure; fire drain when under the limit again.
    backpressured: bool,
    /// False once a close frame is queued: data sends are refused.
    closed: bool,
    /// A refused send was logged; not again until the queue drains.
    drop_logged: bool,
    /// The task's cork holds frames sent before anything queued now: no
    /// sender may write to the socket itself until it is written.
    corked: bool,
    /// Boxed: rare, and 60 bytes inline in every connection.
    command: Option<Box<Command>>,
    /// The topics this connection is subscribed to (see topics.rs).
    topics: BoxedVec<Arc<str>>,
    /// The connection is over (`shut`): it may join no topic any more.
    ended: bool,
    /// While the host has not answered the open: what it may choose
    /// from, what it added to the answer, and its answer once given.
    pending_open: Option<Box<PendingOpen>>,
}

/// An open waiting for the host's answer.
struct PendingOpen {
    offered: Vec<String>,
    answer: Option<Verdict>,
    /// An answer was given (it stays given once the handshake took it):
    /// a second one is refused, however fast the handshake was.
    answered: bool,
    /// The host will answer later (`ServerHandle::defer`).
    deferred: bool,
    extra: AnswerExtra,
}

/// What the host adds to its answer to an open: headers for the 101 or
/// the refusal, and the refusal's body.
#[derive(Debug, Default)]
pub(crate) struct AnswerExtra {
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Drop for Outbox {
    /// What is still queued is no longer held.
    fn drop(&mut self) {
        self.set_bytes(0);
    }
}

impl Outbox {
    /// Bytes queued and not yet written.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Moves up to `max` front frames into `out`, to be written with the
    /// lock released: senders on other threads never wait for a system
    /// call. Moved, not shared (sharing a `Bytes` made from a `Vec`
    /// allocates); [`Outbox::settle`] puts back what was not written.
    pub fn take_batch<A: smallvec::Array<Item = Bytes>>(&mut self, out: &mut SmallVec<A>, max: usize) {
        let n = self.frames.len().min(max);
        if n > 0 {
            out.extend(self.frames.drain(..n));
        }
        self.in_flight = n;
    }

    /// Takes back a batch from [`Outbox::take_batch`] of which the socket
    /// took `n` bytes (0: none, it was full): the written frames go, the
    /// rest returns to the front in order, the first advanced past its
    /// written part. Returns true when the queue just fell under `soft`
    /// after a send reported backpressure (time to drain).
    pub fn settle<A: smallvec::Array<Item = Bytes>>(&mut self, batch: &mut SmallVec<A>, n: usize, soft: usize) -> bool {
        self.in_flight = 0;
        self.set_bytes(self.bytes.saturating_sub(n));
        let (mut done, mut rest) = (0, n);
        while done < batch.len() && rest >= batch[done].len() {
            rest -= batch[done].len();
            done += 1;
        }
        // The front frame was started if it was before, or now.
        self.front_started = batch.len() > done && (rest > 0 || (done == 0 && self.front_started));
        while batch.len() > done {
            let mut f = batch.pop().unwrap_or_default();
            if batch.len() == done {
                f.advance(rest);
            }
            self.frames.push_front(f);
        }
        batch.clear();
        // An empty queue lets its buffer go when it grew large, or when it
        // only ever held the handshake answer: an idle connection holds none.
        if self.frames.is_empty() && !(2..=16).contains(&self.frames.capacity()) {
            self.frames = Boxed::default();
        }
        if self.backpressured && self.bytes < soft {
            self.backpressured = false;
            self.drop_logged = false;
            return true;
        }
        false
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Changes the queued byte count, and the budget's with it.
    fn set_bytes(&mut self, now: usize) {
        match &self.budget {
            Some(b) => b.adjust(&mut self.bytes, now),
            None => self.bytes = now,
        }
    }

    fn push(&mut self, frame: Bytes) -> bool {
        self.set_bytes(self.bytes + frame.len());
        self.frames.push_back(frame);
        self.frames.len() == 1 && self.in_flight == 0 && !self.corked
    }

    /// The cork was written, `rest` of it not (it goes first, `started`
    /// if its beginning went out); true if there was a rest.
    fn uncork(&mut self, rest: Option<Bytes>, started: bool) -> bool {
        self.corked = false;
        let Some(rest) = rest else { return false };
        self.set_bytes(self.bytes + rest.len());
        self.frames.push_front(rest);
        self.front_started = started;
        true
    }

    /// Queues the connection's last frame (a close); false if one already was.
    fn push_last(&mut self, close_frame: Bytes) -> bool {
        if self.closed {
            return false;
        }
        self.push(close_frame);
        self.closed = true;
        true
    }

    /// Drops every frame not yet started, so a close can go out next.
    fn discard_unsent(&mut self) {
        // (Frames in flight are not in `frames`; they come back in front.)
        let keep = (self.in_flight == 0 && self.front_started) as usize;
        while self.frames.len() > keep {
            let f = self.frames.pop_back().unwrap_or_default();
            self.set_bytes(self.bytes - f.len());
        }
    }
}

thread_local! {
    /// The connection whose task is running on this thread: sends to it
    /// need no registry lookup and no wake-up, since its task flushes right
    /// after the callback returns.
    /// Its cork, if its replies may gather there (null otherwise).
    static CURRENT: Cell<Current> = const { Cell::new((0, std::ptr::null(), std::ptr::null())) };
}

type Current = (ConnId, *const ConnShared, *const Cork);

/// Marks `conn` as the connection being polled on this thread until dropped.
pub(crate) struct CurrentConn(Current);

impl CurrentConn {
    /// `cork`: where sends to `conn` from this thread may gather meanwhile
    /// (the caller writes it before the guard goes).
    pub fn enter(conn: &Arc<ConnShared>, cork: Option<&Cork>) -> CurrentConn {
        let cork = cork.map_or(std::ptr::null(), |c| c as *const Cork);
        CurrentConn(CURRENT.with(|c| c.replace((conn.id, Arc::as_ptr(conn), cork))))
    }
}

/// Runs `f` on connection `id` (and its cork, if any) if it is the one
/// being polled on this thread; otherwise gives `f` back.
pub(crate) fn with_current<R, F: FnOnce(&ConnShared, Option<&Cork>) -> R>(id: ConnId, f: F) -> Result<R, F> {
    match current(id) {
        Some((conn, cork)) => Ok(f(conn, cork)),
        None => Err(f),
    }
}

/// Connection `id` and its cork, if it is the one being polled on this
/// thread. The references live as long as the callback that asks: the
/// CurrentConn guard that set them holds (through its caller) an Arc to
/// the ConnShared, and the cork it was given, until it restores the
/// previous value.
#[inline(always)]
fn current<'a>(id: ConnId) -> Option<(&'a ConnShared, Option<&'a Cork>)> {
    let (current, ptr, cork) = CURRENT.with(|c| c.get());
    if current != id || ptr.is_null() {
        return None;
    }
    // SAFETY: see above.
    Some((unsafe { &*ptr }, unsafe { cork.as_ref() }))
}

/// [`ConnShared::cork_reply`] of a message for connection `id`, if it is
/// the one being polled on this thread and its replies may gather in its
/// cork. Out of line with its arguments in registers: the echo's path
/// through the C ABI, where a closure for [`with_current`] cost its
/// packing and a second stack frame.
#[inline(never)]
pub(crate) fn cork_current(id: ConnId, opcode: frame::OpCode, data: &[u8]) -> bool {
    match current(id) {
        Some((conn, Some(cork))) => conn.cork_reply(cork, opcode, data),
        _ => false,
    }
}

/// One non-blocking send(2) of `bytes` to `fd`, an open socket the caller
/// keeps open meanwhile: the bytes it took (0 when full or failed; the task
/// then meets the error on its own write).
fn send_now(fd: RawFd, bytes: &[u8]) -> usize {
    // SAFETY: the caller keeps `fd` open.
    unsafe { crate::sys::send(fd, bytes, false) }.unwrap_or(0)
}

/// Who sends, which decides how a frame may reach the socket.
#[derive(Clone, Copy)]
pub(crate) enum Via {
    /// A callback of the connection's own task, when its cork did not take
    /// the frame ([`ConnShared::cork_reply`]): queued, without a wake (the
    /// task writes right after).
    Own,
    /// Another thread: written here when the queue is empty.
    Other,
    /// One of many recipients (broadcast, publish): queued, the I/O
    /// threads write in parallel.
    Many,
}

impl Drop for CurrentConn {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Per-connection state shared between its task and senders.
pub(crate) struct ConnShared {
    pub id: ConnId,
    pub outbox: Mutex<Outbox>,
    pub waker: AtomicWaker,
    /// Server clock (ms) of the last bytes received: for ping and idle timeout.
    pub last_rx: AtomicU64,
    /// Server clock (ms) of the last keep-alive ping sent.
    /// Only its low 32 bits (compared wrapping: a ping interval is far
    /// below 49 days), so that it packs with the flags below.
    pub last_ping: AtomicU32,
    /// A command is waiting: lets the task skip the lock when none is.
    has_command: AtomicBool,
    /// The host's pointer for this connection (`ws_conn_set_user_data`).
    user_data: AtomicUsize,
    /// How to wake the task from another thread (its I/O thread's list).
    wakes: Arc<RemoteWakes>,
    /// Held by the task while it writes a batch with the outbox unlocked:
    /// senders never wait for that system call, `queued_bytes` does. A
    /// sender writing to the socket itself holds it too.
    pub writing: Mutex<()>,
    /// A plain TCP connection's socket, once its handshake answer is
    /// queued, until its task ends (-1 otherwise, and always over TLS,
    /// whose session only the task may touch): a send from another thread
    /// that finds the queue empty writes the frame itself, which costs the
    /// same system call and saves waking and polling the task.
    direct_fd: AtomicI32,
    /// Its slot in its I/O thread's driver (src/driver.rs), NO_SLOT while
    /// it has none (a handshake, a TLS connection, or removed).
    driver_slot: AtomicU32,
    /// On the driver's ready list (set by a wake, cleared when polled).
    scheduled: AtomicBool,
    /// Frames may be queued: set under the outbox lock wherever one is
    /// added (`queued`), cleared only by the task, under both locks, when
    /// it finds none (`take_batch`). Its flush then skips the locks while
    /// nothing was queued, the echo's case (replies go through the cork).
    has_frames: AtomicBool,
}

const NO_SLOT: u32 = u32::MAX;

impl ConnShared {
    pub fn new(id: ConnId, now: u64, wakes: Arc<RemoteWakes>, budget: Option<Arc<Budget>>) -> ConnShared {
        let mut outbox = Outbox::default();
        outbox.budget = budget;
        ConnShared {
            id,
            outbox: Mutex::new(outbox),
            waker: AtomicWaker::new(),
            last_rx: AtomicU64::new(now),
            last_ping: AtomicU32::new(now as u32),
            has_command: AtomicBool::new(false),
            user_data: AtomicUsize::new(0),
            wakes,
            writing: Mutex::new(()),
            direct_fd: AtomicI32::new(-1),
            driver_slot: AtomicU32::new(NO_SLOT),
            scheduled: AtomicBool::new(false),
            has_frames: AtomicBool::new(false),
        }
    }

    /// The list that wakes this connection from other threads.
    pub fn wakes(&self) -> &Arc<RemoteWakes> {
        &self.wakes
    }

    /// Its slot in its thread's driver, if the driver has it.
    pub fn driver_slot(&self) -> Option<u32> {
        Some(self.driver_slot.load(Ordering::Relaxed)).filter(|&s| s != NO_SLOT)
    }

    pub fn set_driver_slot(&self, slot: Option<u32>) {
        self.driver_slot.store(slot.unwrap_or(NO_SLOT), Ordering::Relaxed);
    }

    /// Marks it scheduled; false if it already was (it is on the list).
    pub fn mark_scheduled(&self) -> bool {
        !self.scheduled.swap(true, Ordering::Relaxed)
    }

    pub fn clear_scheduled(&self) {
        self.scheduled.store(false, Ordering::Relaxed);
    }

    /// Lets senders on other threads write to `fd` while the queue is empty.
    pub fn allow_direct_writes(&self, fd: RawFd) {
        self.direct_fd.store(fd, Ordering::Release);
    }

    /// Whether the socket may be written outside the task's stream (plain
    /// TCP, handshake answered, task not ending).
    pub fn direct_writes_allowed(&self) -> bool {
        self.direct_fd.load(Ordering::Relaxed) >= 0
    }

    /// Ends direct writes, waiting for one in progress: called by the task
    /// before its socket closes (the fd number may be reused at once).
    pub fn end_direct_writes(&self) {
        let _writer = self.writing.lock();
        self.direct_fd.store(-1, Ordering::Release);
    }

    /// Writes the queue's only frame on this thread when the task is not
    /// writing, the socket is ours and takes it whole; returns the bytes
    /// written and whether the task must still be woken (nothing or part
    /// written, or more queued meanwhile: the task writes them when the
    /// socket is writable).
    fn write_here(&self, soft: usize) -> (usize, bool) {
        if self.direct_fd.load(Ordering::Acquire) < 0 {
            return (0, true);
        }
        let Some(_writer) = self.writing.try_lock() else { return (0, true) };
        let fd = self.direct_fd.load(Ordering::Acquire);
        let mut ob = self.outbox.lock();
        let busy = ob.front_started || ob.corked || ob.backpressured || ob.command.is_some();
        if fd < 0 || ob.frames.len() != 1 || busy {
            return (0, true);
        }
        let mut batch = SmallVec::<[Bytes; 1]>::new();
        ob.take_batch(&mut batch, 1);
        drop(ob);
        let len = batch[0].len();
        // `fd` stays open: the task clears `direct_fd` under `writing` (held
        // here) before closing it.
        let n = send_now(fd, &batch[0]);
        let mut ob = self.outbox.lock();
        ob.settle(&mut batch, n, soft);
        // Frames queued meanwhile found ours in flight and did not wake it.
        (n, n < len || !ob.is_empty())
    }

    /// Writes what the task's cork gathered (with one send(2)); what the
    /// socket does not take is queued first, for the task. Returns the
    /// bytes written, and whether the queue holds frames now.
    #[inline]
    pub fn write_cork(&self, cork: &Cork) -> (usize, bool) {
        if cork.is_empty() {
            return (0, false);
        }
        self.write_gathered(cork)
    }

    /// [`ConnShared::write_cork`] of a cork that holds frames.
    #[inline(never)]
    fn write_gathered(&self, cork: &Cork) -> (usize, bool) {
        // No writer lock: while `corked`, no sender starts a write of its
        // own, and none was in flight when the cork began (it needs none).
        let fd = self.direct_fd.load(Ordering::Acquire);
        cork.drain(|bytes| {
            // A cork is used only while direct writes are allowed, and only
            // this task ends them: `fd` is the open socket.
            let n = if fd < 0 { 0 } else { send_now(fd, bytes) };
            let rest = (n < bytes.len()).then(|| Bytes::copy_from_slice(&bytes[n..]));
            let mut ob = self.outbox.lock();
            if ob.uncork(rest, n > 0) {
                self.queued();
            }
            // (Or frames queued meanwhile, which found the cork and did not wake it.)
            (n, !ob.is_empty())
        })
    }

    pub fn user_data(&self) -> usize {
        self.user_data.load(Ordering::Acquire)
    }

    pub fn set_user_data(&self, value: usize) {
        self.user_data.store(value, Ordering::Release);
    }

    /// Wakes the connection's task unless it is the one running here.
    pub fn wake(&self) {
        if CURRENT.with(|c| c.get().0) == self.id {
            return;
        }
        match self.driver_slot() {
            // SAFETY: a connection with a driver slot is in the Arc the
            // driver's entry holds.
            Some(_) => unsafe { crate::driver::wake_held(self) },
            None => self.wakes.wake(&self.waker),
        }
    }

    /// Queues a data frame, enforcing the limits: a connection under its
    /// soft limit takes any frame (so every message the server would accept
    /// can be echoed); one at or over it refuses a frame that would pass
    /// the hard limit. The first refused frame since the queue last drained
    /// is noted in `notes`. `via` decides where a frame that finds the
    /// queue empty goes: the task's cork, written on this thread, or left
    /// to the I/O threads (see [`Via`]).
    pub fn send(&self, out: &Outgoing, limits: Limits, via: Via, notes: &mut SendNotes) -> Result<SendStatus, Error> {
        let mut ob = self.outbox.lock();
        if ob.closed {
            return Err(Error::Closed(self.id));
        }
        // A frame from the connection's own context is made only once it is
        // sure to be queued (its bound checked instead): the context moves on.
        let (frame, len) = match out.uses_own_context(ob.deflate.as_deref()) {
            true => (None, out.max_frame_len()),
            false => {
                let f = out.frame_for(ob.deflate.as_deref_mut());
                let len = f.len();
                (Some(f), len)
            }
        };
        let queued = ob.bytes();
        if queued >= limits.soft && queued + len > limits.hard {
            let first = !std::mem::replace(&mut ob.drop_logged, true);
            if let OverflowPolicy::Close(code) = limits.overflow {
                let reason = "send queue overflow";
                ob.discard_unsent();
                ob.push_last(frame::encode_close(code, reason));
                self.queued();
                self.command(ob, Command::Fail { code, reason: reason.into(), error: Error::Dropped(self.id) });
            } else {
                drop(ob);
            }
            if first {
                notes.first_refusal = Some(queued);
            }
            return Err(Error::Dropped(self.id));
        }
        let frame = match frame {
            Some(f) => f,
            None => out.frame_for(ob.deflate.as_deref_mut()),
        };
        let was_empty = ob.push(frame);
        self.queued();
        let status = if ob.bytes() >= limits.soft {
            ob.backpressured = true;
            SendStatus::Backpressure
        } else {
            SendStatus::Queued
        };
        drop(ob);
        if was_empty {
            let wake = match via {
                // The task writes once the callback returns.
                Via::Own => false,
                Via::Other if status == SendStatus::Queued => {
                    let (written, wake) = self.write_here(limits.soft);
                    notes.written = written;
                    wake
                }
                _ => true,
            };
            if wake {
                self.wake();
            }
        }
        Ok(status)
    }

    /// Puts a message from one of this connection's own callbacks into its
    /// task's `cork` (the echo's path: no frame allocation, no queue, one
    /// lock), when nothing is queued or being written ahead of it, deflate
    /// was not agreed, and the cork stays within its bound (the soft
    /// limit, as the queue would). False: not put, and nothing changed;
    /// [`ConnShared::send`] queues it (and finds a closed connection).
    #[inline]
    pub fn cork_reply(&self, cork: &Cork, opcode: frame::OpCode, data: &[u8]) -> bool {
        let mut ob = self.outbox.lock();
        if ob.closed || !ob.frames.is_empty() || ob.in_flight != 0 || ob.deflate.is_some() {
            return false;
        }
        let pushed = cork.push(frame::header(0x80 | opcode as u8, data.len()), data);
        ob.corked |= pushed;
        pushed
    }

    /// Queues a control frame (ping, pong) outside the limits. False when
    /// closed.
    pub fn send_control(&self, frame: Bytes) -> bool {
        let mut ob = self.outbox.lock();
        if ob.closed {
            return false;
        }
        let was_empty = ob.push(frame);
        self.queued();
        drop(ob);
        if was_empty {
            self.wake();
        }
        true
    }

    /// Hands `command` to the connection's task and wakes it.
    fn command(&self, mut ob: MutexGuard<'_, Outbox>, command: Command) {
        self.has_command.store(true, Ordering::Release);
        ob.command = Some(Box::new(command));
        drop(ob);
        self.wake();
    }

    /// Queues a close frame after the pending data and tells the task to
    /// wait for the peer's answer. Err if a close was already queued.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        let mut ob = self.outbox.lock();
        if !ob.push_last(frame::encode_close(code, reason)) {
            return Err(Error::Closed(self.id));
        }
        self.queued();
        self.command(ob, Command::Close);
        Ok(())
    }

    /// Records the permessage-deflate agreement (before the 101 is queued).
    pub fn set_deflate(&self, deflate: ConnDeflate) {
        self.outbox.lock().deflate = Some(Box::new(deflate));
    }

    /// Puts the 101 answer before everything `on_open` queued, even a close
    /// (a disconnect or server close during `on_open` still completes the
    /// handshake first, then closes it properly).
    pub fn queue_handshake_answer(&self, answer: Bytes) {
        let mut ob = self.outbox.lock();
        let now = ob.bytes + answer.len();
        ob.set_bytes(now);
        // Room for this one frame only (a first push would make room for
        // four): the buffer goes once it is written (`settle`).
        ob.frames.reserve_exact(1);
        ob.frames.push_front(answer);
        self.queued();
    }

    /// Queues the connection's last frame (a close reply or a failure's
    /// close) from its own task; nothing can be sent after it.
    pub fn queue_close(&self, close_frame: Bytes) {
        let mut ob = self.outbox.lock();
        ob.push_last(close_frame);
        self.queued();
    }

    /// Tells the task to drop the connection at once.
    pub fn kill(&self, error: Error) {
        let mut ob = self.outbox.lock();
        ob.closed = true;
        self.command(ob, Command::Kill(error));
    }

    /// Marks the open as waiting for the host's answer.
    pub fn await_answer(&self, offered: Vec<String>) {
        let pending =
            PendingOpen { offered, answer: None, answered: false, deferred: false, extra: AnswerExtra::default() };
        self.outbox.lock().pending_open = Some(Box::new(pending));
    }

    /// Runs `f` on the open still waiting for an answer.
    fn with_pending<R>(&self, f: impl FnOnce(&mut PendingOpen) -> Result<R, Error>) -> Result<R, Error> {
        let mut ob = self.outbox.lock();
        if ob.closed {
            return Err(Error::Closed(self.id));
        }
        match ob.pending_open.as_deref_mut() {
            Some(p) if !p.answered => f(p),
            _ => Err(Error::State(format!("connection {} is not waiting for an answer to its open", self.id))),
        }
    }

    /// The host will answer the open later (from on_open, callback mode).
    pub fn defer_answer(&self) -> Result<(), Error> {
        self.with_pending(|p| {
            p.deferred = true;
            Ok(())
        })
    }

    /// Adds a header to the answer (101 or refusal) not given yet.
    pub fn add_answer_header(&self, name: &str, value: &str) -> Result<(), Error> {
        crate::http::response::check_header(name, value).map_err(Error::InvalidArgument)?;
        self.with_pending(|p| {
            p.extra.headers.push((name.to_string(), value.to_string()));
            Ok(())
        })
    }

    /// After on_open returned "accept": the answer it gave meanwhile, or
    /// `Later` if it deferred, or a plain accept.
    pub fn answer_after_open(&self) -> Verdict {
        let mut ob = self.outbox.lock();
        match ob.pending_open.as_deref_mut() {
            Some(p) if p.answer.is_some() => p.answer.take().unwrap_or(Verdict::Accept(None)),
            Some(p) if p.deferred => Verdict::Later,
            _ => Verdict::Accept(None),
        }
    }

    /// Ends the wait for an answer, handing over what the host added.
    pub fn finish_answer(&self) -> AnswerExtra {
        self.outbox.lock().pending_open.take().map(|p| p.extra).unwrap_or_default()
    }

    /// Records the host's answer to the open and wakes the handshake.
    /// A refusal may carry a short body (at most 64 KiB).
    pub fn answer(&self, verdict: Verdict, body: Option<Vec<u8>>) -> Result<(), Error> {
        if body.as_ref().is_some_and(|b| b.len() > 64 << 10) {
            return Err(Error::InvalidArgument("a refusal body is at most 64 KiB".into()));
        }
        self.with_pending(|pending| {
            if let Verdict::Accept(Some(sub)) = &verdict {
                if !pending.offered.iter().any(|o| o == sub) {
                    return Err(Error::InvalidArgument(format!("subprotocol '{sub}' was not offered by the client")));
                }
            }
            pending.answer = Some(verdict);
            pending.answered = true;
            pending.extra.body = body;
            Ok(())
        })?;
        self.wakes.wake(&self.waker);
        Ok(())
    }

    /// The host's answer once given; `Refuse(503)` when the connection was
    /// closed meanwhile (server shutting down); registers `cx` otherwise.
    pub fn poll_answer(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Verdict> {
        self.waker.register(cx.waker());
        let mut ob = self.outbox.lock();
        if ob.closed {
            return std::task::Poll::Ready(Verdict::Refuse(503));
        }
        match ob.pending_open.as_mut().and_then(|p| p.answer.take()) {
            Some(v) => std::task::Poll::Ready(v),
            None => std::task::Poll::Pending,
        }
    }

    /// Notes that a frame was queued (called under the outbox lock).
    fn queued(&self) {
        self.has_frames.store(true, Ordering::Relaxed);
    }

    /// Whether frames may be queued, for the task's flush: false only if
    /// none was added since the task last found the queue empty, which a
    /// sender on another thread follows with a wake (happens-before).
    pub fn may_have_frames(&self) -> bool {
        self.has_frames.load(Ordering::Relaxed)
    }

    /// The task's [`Outbox::take_batch`], under the writer lock it holds:
    /// an empty queue clears the `may_have_frames` hint.
    pub fn take_batch<A: smallvec::Array<Item = Bytes>>(&self, out: &mut SmallVec<A>, max: usize) {
        let mut ob = self.outbox.lock();
        ob.take_batch(out, max);
        if out.is_empty() {
            self.has_frames.store(false, Ordering::Relaxed);
        }
    }

    /// Whether a command is waiting (a hint: [`ConnShared::take_command`] decides).
    pub fn has_command(&self) -> bool {
        self.has_command.load(Ordering::Relaxed)
    }

    /// Takes the pending command, if any.
    pub fn take_command(&self) -> Option<Command> {
        if !self.has_command.load(Ordering::Relaxed) || !self.has_command.swap(false, Ordering::Acquire) {
            return None;
        }
        self.outbox.lock().command.take().map(|c| *c)
    }

    /// Refuses further sends and forgets the queue (the connection is
    /// over); returns its topics, to unsubscribe from.
    pub fn shut(&self) -> Vec<Arc<str>> {
        let mut ob = self.outbox.lock();
        ob.closed = true;
        ob.ended = true;
        ob.frames = Boxed::default();
        ob.set_bytes(0);
        ob.pending_open = None;
        std::mem::take(&mut ob.topics).into_inner()
    }

    /// Lists `topic` as one of ours; fails once the connection has ended.
    pub fn add_topic(&self, topic: Arc<str>) -> Result<(), Error> {
        let mut ob = self.outbox.lock();
        if ob.ended {
            return Err(Error::Closed(self.id));
        }
        ob.topics.push(topic);
        Ok(())
    }

    pub fn remove_topic(&self, topic: &str) {
        self.outbox.lock().topics.retain(|t| &**t != topic);
    }

    pub fn is_closed(&self) -> bool {
        self.outbox.lock().closed
    }

    /// Bytes queued and not yet handed to the socket (a batch being
    /// written right now no longer counts).
    /// As `queued_bytes`, without waiting for a write in progress (for the
    /// statistics, summed under a registry lock).
    pub fn queued_bytes_now(&self) -> usize {
        self.outbox.lock().bytes()
    }

    /// Bytes queued and not yet written. Waits for a write in progress, so
    /// that bytes a client may already have read are not counted.
    pub fn queued_bytes(&self) -> usize {
        let _writer = self.writing.lock();
        self.outbox.lock().bytes()
    }

    /// What the queue costs, for deciding to stop reading a client that
    /// does not read: its bytes plus a frame's own cost (its handle and
    /// allocation, about 64 bytes) for each queued frame, so a flood of
    /// tiny pongs is bounded by what it holds, not by its 2-byte payloads.
    pub fn backlog(&self) -> usize {
        const FRAME_COST: usize = 64;
        let _writer = self.writing.lock();
        let ob = self.outbox.lock();
        ob.bytes() + ob.frames.len() * FRAME_COST
    }

    pub fn touch(&self, now: u64) {
        self.last_rx.store(now, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(frames: &[&'static [u8]]) -> Outbox {
        let mut ob = Outbox::default();
        frames.iter().for_each(|f| _ = ob.push(Bytes::from_static(f)));
        ob
    }

    fn contents(ob: &Outbox) -> Vec<Vec<u8>> {
        ob.frames.iter().map(|f| f.to_vec()).collect()
    }

    #[test]
    fn a_batch_settles_back_in_order_past_what_was_written() {
        let mut ob = queue(&[b"abc", b"defg", b"hi"]);
        let mut batch = SmallVec::<[Bytes; 4]>::new();
        ob.take_batch(&mut batch, 2);
        assert_eq!((batch.len(), ob.frames.len(), ob.in_flight), (2, 1, 2));
        assert!(!ob.push(Bytes::from_static(b"jk")), "a push while frames are in flight is not the first");
        ob.settle(&mut batch, 5, 1 << 20);
        assert_eq!(contents(&ob), [&b"fg"[..], b"hi", b"jk"], "abc and de written, fg back in front");
        assert_eq!((ob.bytes(), ob.in_flight, ob.front_started), (6, 0, true));
        ob.discard_unsent();
        assert_eq!(contents(&ob), [b"fg"], "a started frame is kept for the close");
        ob.take_batch(&mut batch, 32);
        ob.settle(&mut batch, 0, 1 << 20);
        assert_eq!((contents(&ob), ob.front_started), (vec![b"fg".to_vec()], true), "nothing written: still started");
        ob.take_batch(&mut batch, 32);
        ob.settle(&mut batch, 2, 1 << 20);
        assert_eq!((ob.frames.len(), ob.bytes(), ob.front_started), (0, 0, false));
    }

    #[test]
    fn frames_in_flight_survive_a_discard_and_stay_ahead_of_the_close() {
        let mut ob = queue(&[b"one", b"two"]);
        let mut batch = SmallVec::<[Bytes; 4]>::new();
        ob.take_batch(&mut batch, 1);
        ob.discard_unsent();
        assert!(ob.push_last(Bytes::from_static(b"close")));
        ob.settle(&mut batch, 1, 1 << 20);
        assert_eq!(contents(&ob), [&b"ne"[..], b"close"]);
        assert_eq!(ob.bytes(), 7);
    }

    /// The task's flush looks at the queue only while `may_have_frames`:
    /// a way of queueing that did not set it would leave its frame unsent.
    #[test]
    fn every_way_a_frame_is_queued_sets_the_hint_and_only_an_empty_take_clears_it() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let fresh = || ConnShared::new(1, 0, Arc::new(RemoteWakes::new()), None);
        let take_all = |c: &ConnShared| {
            let mut batch = SmallVec::<[Bytes; 32]>::new();
            c.take_batch(&mut batch, 32);
            assert!(!batch.is_empty() && c.may_have_frames(), "frames were taken: not cleared yet");
            batch.clear();
            c.take_batch(&mut batch, 32);
            assert!(batch.is_empty() && !c.may_have_frames(), "an empty take clears it");
        };
        type Queue = fn(&ConnShared);
        let ways: [(&str, Queue); 4] = [
            ("control frame", |c| assert!(c.send_control(Bytes::from_static(b"\x8a\x00")))),
            ("close", |c| c.close(1000, "bye").unwrap()),
            ("close reply", |c| c.queue_close(Bytes::from_static(b"\x88\x00"))),
            ("handshake answer", |c| c.queue_handshake_answer(Bytes::from_static(b"HTTP/1.1 101\r\n\r\n"))),
        ];
        for (what, queue) in ways {
            let c = fresh();
            assert!(!c.may_have_frames(), "{what}: a new connection has none");
            queue(&c);
            assert!(c.may_have_frames(), "{what}: queued, hint not set");
            take_all(&c);
        }
        // A cork's rest that the socket did not take.
        let (ours, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        while let Ok(n) = (&ours).write(&[0; 4096]) {
            assert!(n > 0);
        }
        let c = fresh();
        c.allow_direct_writes(ours.as_raw_fd());
        let mut slot = std::mem::MaybeUninit::uninit();
        let cork = Cork::in_place(&mut slot, usize::MAX);
        assert!(c.cork_reply(cork, frame::OpCode::Binary, &[7; 1000]));
        assert!(!c.may_have_frames(), "corked, nothing queued");
        assert_eq!(c.write_cork(cork), (0, true), "the socket is full");
        assert!(c.may_have_frames(), "the cork's rest is queued, hint not set");
        take_all(&c);
        c.end_direct_writes();
    }

    #[test]
    fn a_cork_a_full_socket_refuses_goes_first_in_the_queue_in_order() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let (mut ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let conn = ConnShared::new(1, 0, Arc::new(RemoteWakes::new()), None);
        conn.allow_direct_writes(ours.as_raw_fd());
        let mut filled = 0;
        while let Ok(n) = ours.write(&[0xAA; 4096]) {
            filled += n;
        }
        let mut slot = std::mem::MaybeUninit::uninit();
        let cork = Cork::in_place(&mut slot, usize::MAX);
        let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        assert!(cork.push(frame::header(0x82, payload.len()), &payload));
        conn.outbox.lock().corked = true;
        assert!(!conn.outbox.lock().push(Bytes::from_static(b"after")), "corked: not the first");
        assert_eq!(conn.write_cork(cork), (0, true), "the socket is full: all of it left");
        assert!(cork.is_empty());
        {
            let ob = conn.outbox.lock();
            assert!(!ob.corked && !ob.front_started, "nothing of it went out: it may still be discarded");
            assert_eq!((ob.frames.len(), ob.bytes()), (2, 20_004 + 5));
        }
        // The rest follows in order once the task writes the queue.
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            peer.read_to_end(&mut all).unwrap();
            all
        });
        loop {
            let mut batch = SmallVec::<[Bytes; 4]>::new();
            conn.outbox.lock().take_batch(&mut batch, 4);
            if batch.is_empty() {
                break;
            }
            let n = ours.write(&batch[0]).unwrap_or(0);
            conn.outbox.lock().settle(&mut batch, n, 1 << 20);
        }
        drop(ours);
        let all = reader.join().unwrap();
        assert_eq!(all.len(), filled + 20_004 + 5);
        let tail = &all[filled..];
        assert_eq!(&tail[..4], &[0x82, 126, 0x4e, 0x20]);
        assert!(tail[4..20_004] == payload[..] && &tail[20_004..] == b"after");
    }

    #[test]
    fn settling_under_the_soft_limit_after_backpressure_says_drain_once() {
        let mut ob = queue(&[b"0123456789"]);
        ob.backpressured = true;
        let mut batch = SmallVec::<[Bytes; 4]>::new();
        ob.take_batch(&mut batch, 32);
        assert!(!ob.settle(&mut batch, 2, 5), "8 bytes left, soft limit 5");
        ob.take_batch(&mut batch, 32);
        assert!(ob.settle(&mut batch, 4, 5));
        ob.take_batch(&mut batch, 32);
        assert!(!ob.settle(&mut batch, 4, 5), "drain fires once");
    }
}
