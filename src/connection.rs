//! One open WebSocket connection's life, as a hand-written future: the I/O
//! glue between a socket and the protocol layer. It reads into a buffer,
//! feeds the connection's [`Reader`], flushes the outbox, runs the close
//! handshake's timers, and reports the close exactly once. The server is
//! reached only through [`Host`], so this module does not name it.
//!
//! Memory is the design constraint: an idle connection holds no buffer at
//! all. Reads land in a per-thread scratch buffer and complete frames are
//! handled in place; only a partial frame is copied into `inbuf`, which is
//! freed again once it empties.
use crate::boxed_vec::BoxedVec;
use crate::budget::Budget;
use crate::config::Config;
use crate::cork::Cork;
use crate::outbox::{Command, ConnShared, CurrentConn};
use crate::protocol::frame::{self, OpCode, Violation};
use crate::protocol::{Limits, Reader, Sink};
use crate::stats::Counters;
use crate::{Error, Kind, LogLevel};
use bytes::Bytes;
use smallvec::SmallVec;
use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

const SCRATCH_SIZE: usize = 64 * 1024;
/// Reads per poll before yielding to other connections.
const READ_BUDGET: usize = 16;
/// Frames gathered into one write.
const MAX_BATCH: usize = 32;
/// After the close frame is out, how long to drain unread input so the
/// peer gets our close frame rather than a TCP reset.
const LINGER: Duration = Duration::from_secs(2);

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_SIZE]);
}

/// A connection's byte stream.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin {
    /// The next read is known to find nothing until the socket is reported
    /// readable again (the driver's edge-triggered streams): a round then
    /// ends before its read and the checks in front of it, which would
    /// otherwise run a second time for every message.
    fn read_would_wait(&self) -> bool {
        false
    }
}

impl Stream for tokio::net::TcpStream {}
impl<IO: AsyncRead + AsyncWrite + Unpin> Stream for crate::tls_stream::TlsStream<IO> {}

/// What a connection needs from its server.
pub(crate) trait Host: Unpin {
    fn config(&self) -> &Config;
    fn counters(&self) -> &Counters;
    /// The server clock (ms since start), for idle tracking.
    fn now_ms(&self) -> u64;
    fn log(&self, level: LogLevel, message: &str);
    /// A whole message for the host (counted).
    fn message(&self, conn: &Arc<ConnShared>, data: &[u8], kind: Kind);
    fn error(&self, conn: &Arc<ConnShared>, error: &Error);
    /// The send queue fell back under its limit.
    fn drain(&self, conn: &Arc<ConnShared>);
    /// The connection is over: unregister it and tell the host, once.
    fn closed(&self, conn: &Arc<ConnShared>, code: u16, reason: &str);
    /// Ready while the host can take more events.
    fn poll_event_room(&self, cx: &mut Context<'_>) -> Poll<()>;
    /// The server-wide memory budget, which counts partial input.
    fn budget(&self) -> &Budget;
}

/// The reader's results, applied to this connection.
struct Deliver<'a, H: Host> {
    host: &'a H,
    shared: &'a Arc<ConnShared>,
    /// Messages reach the host only while the connection is open (not
    /// after our own close frame went out).
    open: bool,
    /// The client's close frame, when one came: its code and reason.
    close: Option<(u16, String)>,
}

impl<H: Host> Sink for Deliver<'_, H> {
    fn message(&mut self, data: &[u8], kind: Kind) {
        if self.open {
            self.host.message(self.shared, data, kind);
        }
    }

    fn ping(&mut self, payload: &[u8]) {
        self.shared.send_control(frame::encode(OpCode::Pong, payload));
    }

    fn close(&mut self, parsed: Option<(u16, &str)>) {
        if self.open {
            let reply = match parsed {
                Some((code, _)) => frame::encode_close(code, ""),
                None => frame::encode(OpCode::Close, &[]),
            };
            self.shared.queue_close(reply);
        }
        self.close = Some(parsed.map_or((1005, String::new()), |(c, r)| (c, r.to_string())));
    }
}

enum Mode {
    /// Messages flow both ways.
    Open,
    /// Our close frame is queued; waiting for the peer's.
    Closing,
    /// The close is settled: flush the outbox, then report its code and
    /// reason (boxed: an open connection carries one pointer for them).
    Finishing(Box<(u16, String)>),
    /// Reported; shutting the socket down and draining what the peer sent.
    Lingering,
}

/// The limits one poll works with, read from the config once per poll
/// (each read of it is a check that it is set).
#[derive(Clone, Copy)]
struct Settings {
    limits: Limits,
    /// The send queue's soft limit.
    soft: usize,
}

pub(crate) struct Connection<S, H: Host> {
    stream: S,
    shared: Arc<ConnShared>,
    host: H,
    /// A partial frame carried over between reads (empty when idle; one
    /// pointer then, so an idle connection's task fits a 256-byte cell).
    inbuf: BoxedVec<u8>,
    /// The protocol state: frames, reassembly, inflating, UTF-8.
    reader: Reader,
    mode: Mode,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Bytes of partial input counted in the memory budget.
    held: usize,
    /// `inbuf` holds what the client sent right after its handshake.
    leftover: bool,
    reported: bool,
    shut_down: bool,
}

impl<S: Stream, H: Host> Connection<S, H> {
    /// Lets senders on other threads write to the socket, `fd` (plain TCP),
    /// while the queue is empty ([`ConnShared::allow_direct_writes`]).
    pub fn allow_direct_writes(&self, fd: std::os::fd::RawFd) {
        self.shared.allow_direct_writes(fd);
    }

    pub fn shared(&self) -> &Arc<ConnShared> {
        &self.shared
    }

    pub fn stream(&self) -> &S {
        &self.stream
    }

    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// `leftover` is what the client sent after its handshake request.
    pub fn new(stream: S, shared: Arc<ConnShared>, host: H, reader: Reader, leftover: Vec<u8>) -> Self {
        let has_leftover = !leftover.is_empty();
        Connection {
            stream,
            shared,
            host,
            inbuf: BoxedVec::from(leftover),
            reader,
            mode: Mode::Open,
            deadline: None,
            held: 0,
            leftover: has_leftover,
            reported: false,
            shut_down: false,
        }
    }

    fn set_deadline(&mut self, after: Duration) {
        self.deadline = Some(Box::pin(tokio::time::sleep(after)));
    }

    /// Reports the end to the host, once, then lingers (see `poll_linger`).
    fn report_close(&mut self, code: u16, reason: &str) {
        if self.announce_close(code, reason) {
            self.inbuf = BoxedVec::default();
            self.reader = Reader::default();
            self.mode = Mode::Lingering;
            self.set_deadline(LINGER);
        }
    }

    fn report_error(&self, error: &Error) {
        self.host.log(LogLevel::Info, &format!("connection {}: {error}", self.shared.id));
        self.host.error(&self.shared, error);
    }

    /// Fails the connection: close frame with the violation's code, flush,
    /// report. Input after the violation is ignored.
    fn fail(&mut self, v: Violation) {
        let error = match v.code {
            frame::TOO_BIG => Error::TooBig(v.reason.into()),
            _ => Error::Protocol(v.reason.into()),
        };
        self.report_error(&error);
        self.shared.queue_close(frame::encode_close(v.code, v.reason));
        self.mode = Mode::Finishing(Box::new((v.code, v.reason.into())));
        self.set_deadline(self.host.config().close_timeout);
    }

    fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::Close => {
                if matches!(self.mode, Mode::Open) {
                    self.mode = Mode::Closing;
                    self.set_deadline(self.host.config().close_timeout);
                }
            }
            Command::Fail { code, reason, error } => {
                self.report_error(&error);
                self.mode = Mode::Finishing(Box::new((code, reason)));
                self.set_deadline(self.host.config().close_timeout);
            }
            Command::Kill(error) => {
                self.report_error(&error);
                self.report_close(1006, "");
            }
        }
    }

    /// Handles every complete frame at the start of `buf`; returns the bytes
    /// consumed. Once the connection stops reading, all of it counts.
    /// Replies sent from the callbacks gather in the cork, which the round
    /// writes after (`poll_round`).
    #[inline(always)]
    fn process(&mut self, buf: &mut [u8], limits: Limits) -> usize {
        if !matches!(self.mode, Mode::Open | Mode::Closing) {
            return buf.len();
        }
        let mut deliver =
            Deliver { host: &self.host, shared: &self.shared, open: matches!(self.mode, Mode::Open), close: None };
        let result = self.reader.feed(buf, limits, &mut deliver);
        let close = deliver.close.take();
        if let Some((code, reason)) = close {
            self.mode = Mode::Finishing(Box::new((code, reason)));
            self.set_deadline(self.host.config().close_timeout);
        }
        match result {
            Ok(used) => used,
            Err(v) => {
                self.fail(v);
                buf.len()
            }
        }
    }

    /// Reads once and handles what arrived. Ready(Ok(0)) is end of input.
    fn poll_read_some(&mut self, cx: &mut Context<'_>, limits: Limits) -> Poll<io::Result<usize>> {
        if self.inbuf.is_empty() {
            SCRATCH.with(|cell| {
                let mut owned;
                let mut guard = cell.try_borrow_mut();
                let scratch: &mut [u8] = match guard.as_deref_mut() {
                    Ok(s) => s,
                    Err(_) => {
                        owned = vec![0u8; SCRATCH_SIZE];
                        &mut owned
                    }
                };
                let mut rb = ReadBuf::new(scratch);
                ready!(Pin::new(&mut self.stream).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n > 0 {
                    self.touch();
                    let used = self.process(&mut scratch[..n], limits);
                    if used < n && !self.reported {
                        self.inbuf.reserve_exact(self.reader.need().max(n - used));
                        self.inbuf.extend_from_slice(&scratch[used..n]);
                    }
                }
                Poll::Ready(Ok(n))
            })
        } else {
            let want = self.reader.need().saturating_sub(self.inbuf.len()).max(4096);
            if self.inbuf.capacity() - self.inbuf.len() < want {
                self.inbuf.reserve(want);
            }
            let len = self.inbuf.len();
            let spare = self.inbuf.spare_capacity_mut();
            let mut rb = ReadBuf::uninit(spare);
            ready!(Pin::new(&mut self.stream).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            // SAFETY: poll_read initialised the first `n` spare bytes.
            unsafe { self.inbuf.set_len(len + n) };
            if n > 0 {
                self.touch();
                self.process_inbuf(limits);
            }
            Poll::Ready(Ok(n))
        }
    }

    /// Handles the complete frames in `inbuf`, keeping the partial rest
    /// (with room for all of it) or freeing the buffer.
    fn process_inbuf(&mut self, limits: Limits) {
        let mut buf = std::mem::take(&mut self.inbuf);
        let used = self.process(&mut buf[..], limits);
        if self.reported || used == buf.len() {
            return;
        }
        buf.drain(..used);
        let (need, len) = (self.reader.need(), buf.len());
        if buf.capacity() < need {
            buf.reserve_exact(need - len);
        }
        self.inbuf = buf;
    }

    /// Writes what `cork` gathered; true if the queue holds frames now (the
    /// cork's rest, or frames sent meanwhile: for [`Connection::poll_flush_out`]).
    fn write_cork(&self, cork: &Cork) -> bool {
        let (written, left) = self.shared.write_cork(cork);
        if written > 0 {
            Counters::add(&self.host.counters().bytes_out, written as u64);
        }
        left
    }

    fn touch(&self) {
        self.shared.touch(self.host.now_ms());
    }

    /// Writes the outbox until it is empty (Ready) or the socket is full.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>, soft: usize) -> Poll<io::Result<()>> {
        // A hint first, without a lock: usually nothing was queued.
        while self.shared.may_have_frames() {
            let mut batch = SmallVec::<[Bytes; MAX_BATCH]>::new();
            // Held until the count is right again, never across a callback.
            let writing = self.shared.writing.lock();
            self.shared.take_batch(&mut batch, MAX_BATCH);
            if batch.is_empty() {
                break;
            }
            let stream = Pin::new(&mut self.stream);
            // One frame (the common case) goes out with send(2), cheaper
            // than writev(2); several are gathered into one writev.
            let result = match batch.as_slice() {
                [frame] => stream.poll_write(cx, frame),
                frames => {
                    let mut slices = [IoSlice::new(&[]); MAX_BATCH];
                    frames.iter().zip(slices.iter_mut()).for_each(|(f, s)| *s = IoSlice::new(f));
                    stream.poll_write_vectored(cx, &slices[..frames.len()])
                }
            };
            let n = match &result {
                Poll::Ready(Ok(n)) => *n,
                _ => 0,
            };
            let drained = self.shared.outbox.lock().settle(&mut batch, n, soft);
            drop(writing);
            match result {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(_)) => {}
            }
            Counters::add(&self.host.counters().bytes_out, n as u64);
            if drained && !self.reported {
                self.host.drain(&self.shared);
            }
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// One round of work; Ready(true) when the connection is entirely done.
    fn poll_round(&mut self, cx: &mut Context<'_>, cork: &Cork, settings: Settings) -> Poll<bool> {
        if let Some(cmd) = self.shared.take_command() {
            // After on_close nothing more may reach the host (a late kill
            // from the server's close must not add an on_error).
            if !self.reported {
                self.apply(cmd);
            }
        }
        if matches!(self.mode, Mode::Lingering) {
            return self.poll_linger(cx).map(|_| true);
        }
        let flushed = match self.poll_flush_out(cx, settings.soft) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => {
                self.end_with_io_error(e);
                return Poll::Ready(false);
            }
            Poll::Pending => false,
        };
        if flushed && matches!(self.mode, Mode::Finishing(_)) {
            if let Mode::Finishing(close) = std::mem::replace(&mut self.mode, Mode::Lingering) {
                let (code, reason) = *close;
                self.report_close(code, &reason);
            }
            return Poll::Ready(false);
        }
        if let Some(d) = self.deadline.as_mut() {
            if d.as_mut().poll(cx).is_ready() {
                let ms = self.host.config().close_timeout.as_millis();
                let (code, reason, why) = match &self.mode {
                    Mode::Finishing(close) => {
                        let (code, reason) = &**close;
                        (*code, reason.clone(), format!("the client did not take the close frame within {ms} ms"))
                    }
                    _ => (1006, "".into(), format!("no close frame from the client within {ms} ms")),
                };
                self.report_error(&Error::Timeout(why));
                self.report_close(code, &reason);
                return Poll::Ready(false);
            }
        }
        if !matches!(self.mode, Mode::Open | Mode::Closing) || (flushed && self.stream.read_would_wait()) {
            return Poll::Pending;
        }
        if !flushed && self.shared.backlog() >= settings.soft {
            // The client is not reading what we send (pongs included): stop
            // reading its input until it does, so the queue stays bounded.
            return Poll::Pending;
        }
        if matches!(self.mode, Mode::Open) && self.host.poll_event_room(cx).is_pending() {
            // The host's event queue is full: leave the input in the socket
            // (TCP pushes back on the client) until the host drains it.
            return Poll::Pending;
        }
        let completing = self.reader.need() > 0 && self.inbuf.capacity() >= self.reader.need();
        if !completing && self.host.budget().poll_room(cx).is_pending() {
            // Over the server's memory budget: read nothing that needs more
            // memory (a frame whose room is already held may still finish,
            // and release it) until enough is released elsewhere.
            return Poll::Pending;
        }
        if std::mem::take(&mut self.leftover) {
            // Frames sent along with the handshake: handle them before reading.
            self.process_inbuf(settings.limits);
            self.write_cork(cork);
            return Poll::Ready(false);
        }
        match self.poll_read_some(cx, settings.limits) {
            Poll::Ready(Ok(0)) => {
                self.report_close(1006, "");
                Poll::Ready(false)
            }
            Poll::Ready(Ok(_)) => {
                let replied = !cork.is_empty();
                let queued = self.write_cork(cork);
                // The common end of a poll (a message in, its reply out
                // through the cork, which tells whether anything is queued
                // now): the socket is drained (its next read waits for an
                // edge), nothing is queued, no command came, the connection
                // is still open. Another round would only find that again.
                if replied
                    && !queued
                    && matches!(self.mode, Mode::Open)
                    && self.stream.read_would_wait()
                    && !self.shared.has_command()
                {
                    return Poll::Pending;
                }
                Poll::Ready(false)
            }
            Poll::Ready(Err(e)) => {
                self.end_with_io_error(e);
                Poll::Ready(false)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn end_with_io_error(&mut self, e: io::Error) {
        if !self.reported {
            self.report_error(&Error::Io(e.to_string()));
            self.report_close(1006, "");
        }
        self.deadline = None;
        self.shut_down = true;
    }

    /// After the report: shut down our side and drain the peer's until it
    /// closes or the linger time is up.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(d) = self.deadline.as_mut() {
            if d.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        } else {
            return Poll::Ready(());
        }
        if !self.shut_down {
            match Pin::new(&mut self.stream).poll_shutdown(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => self.shut_down = true,
            }
        }
        let mut sink = [0u8; 1024];
        for _ in 0..READ_BUDGET {
            let mut rb = ReadBuf::new(&mut sink);
            match Pin::new(&mut self.stream).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !rb.filled().is_empty() => continue,
                _ => return Poll::Ready(()),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<S: Stream, H: Host> Future for Connection<S, H> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let config = this.host.config();
        let limits = Limits { max_frame: config.max_frame_size, max_message: config.max_message_size };
        let settings = Settings { limits, soft: config.send_queue_limit };
        // On the stack, uninitialised: it costs nothing until a reply.
        let mut slot = std::mem::MaybeUninit::uninit();
        let cork = Cork::in_place(&mut slot, settings.soft);
        let corking = this.shared.direct_writes_allowed();
        let _current = CurrentConn::enter(&this.shared, corking.then_some(cork));
        // A connection on the driver is woken without its waker (driver.rs
        // `wake_held`); a task's waker is taken by each wake, so it is
        // registered again at every poll.
        if this.shared.driver_slot().is_none() {
            this.shared.waker.register(cx.waker());
        }
        let result = this.poll_rounds(cx, cork, settings);
        // Replies from callbacks outside a read (on_drain) gather too.
        if this.write_cork(cork) && result.is_pending() {
            cx.waker().wake_by_ref();
        }
        this.account();
        result
    }
}

impl<S: Stream, H: Host> Connection<S, H> {
    fn poll_rounds(&mut self, cx: &mut Context<'_>, cork: &Cork, settings: Settings) -> Poll<()> {
        for _ in 0..READ_BUDGET {
            // Done after an I/O error (no linger left); a connection that
            // shut its side down normally goes on draining in poll_linger
            // until the peer closes or LINGER passes, else its unread input
            // would reset the socket and lose the close frame we sent.
            if self.shut_down && self.reported && self.deadline.is_none() {
                return Poll::Ready(());
            }
            match self.poll_round(cx, cork, settings) {
                Poll::Ready(true) => return Poll::Ready(()),
                Poll::Ready(false) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<S, H: Host> Connection<S, H> {
    /// Brings the memory budget's count of this connection's partial input
    /// (its carry-over buffer, a message being assembled) up to date.
    fn account(&mut self) {
        let now = self.inbuf.capacity() + self.reader.held_bytes();
        self.host.budget().adjust(&mut self.held, now);
    }

    /// Delivers `on_close`, exactly once; false if it was already delivered.
    fn announce_close(&mut self, code: u16, reason: &str) -> bool {
        if self.reported {
            return false;
        }
        self.reported = true;
        // Also from Drop, outside poll: the host may still read user data.
        let _current = CurrentConn::enter(&self.shared, None);
        self.host.closed(&self.shared, code, reason);
        true
    }
}

impl<S, H: Host> Drop for Connection<S, H> {
    /// A task dropped early (runtime shutdown, a panic in a handler) still
    /// owes the host its close event. The socket closes with the stream,
    /// after this: a sender writing to it directly is waited for first.
    fn drop(&mut self) {
        self.shared.end_direct_writes();
        self.announce_close(1006, "");
        self.host.budget().adjust(&mut self.held, 0);
    }
}
