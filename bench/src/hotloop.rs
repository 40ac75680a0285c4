//! What the echo and broadcast hot loops (`epoll_echo.rs`,
//! `epoll_bcast.rs`) share: reading a connection's frames, sending on a
//! non-blocking socket, and the measured window.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::client::{Frame, FrameBuf, WsConn, OP_CLOSE};
use crate::procs::{CpuDelta, CpuMark};
use crate::sock;

/// A latency as recorded: nanoseconds, saturating at u32::MAX (4.3 s).
pub fn nanos(d: Duration) -> u32 {
    d.as_nanos().min(u32::MAX as u128) as u32
}

/// A hot loop's connection: the socket, or it and a TLS session (`TlsWire`).
pub trait Wire: AsRawFd + Sized {
    /// Whether its connections are opened over TLS.
    const TLS: bool = false;
    /// One read of received (decrypted) bytes into `buf`, as `sock::recv`:
    /// `Ok(0)` closed, `WouldBlock` nothing yet.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Received bytes already read off the socket and waiting (TLS
    /// plaintext), which no epoll event will announce.
    fn buffered(&self) -> bool {
        false
    }
    /// Sends all of `data` (encrypted first, for TLS) on the non-blocking
    /// socket, `sock::send_all` waiting 10 s at most for room.
    fn send_all(&self, data: &[u8]) -> io::Result<()>;
    /// A handshaken connection's wire and parser, for a hot loop.
    fn from_conn(c: WsConn) -> io::Result<(Self, FrameBuf)>;
}

// Inlined, as the socket calls were before the loops were generic (without
// the hints the plain loop ran ~20% more user-space instructions per message).
impl Wire for TcpStream {
    #[inline]
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        sock::recv(self.as_raw_fd(), buf)
    }

    #[inline]
    fn send_all(&self, data: &[u8]) -> io::Result<()> {
        sock::send_all(self.as_raw_fd(), data, Duration::from_secs(10))
    }

    fn from_conn(c: WsConn) -> io::Result<(Self, FrameBuf)> {
        c.into_parts()
    }
}

/// `Wire::send_all`, its error as text like every hot-loop error.
#[inline]
pub fn send_all_nb(s: &impl Wire, data: &[u8]) -> Result<(), String> {
    s.send_all(data).map_err(|e| e.to_string())
}

/// Sends the pongs `fb` owes the server, if any; the buffer keeps its
/// capacity for the next ones.
#[inline]
pub fn flush_pending(s: &impl Wire, fb: &mut FrameBuf) -> Result<(), String> {
    if !fb.pending.is_empty() {
        send_all_nb(s, &fb.pending)?;
        fb.pending.clear();
    }
    Ok(())
}

/// One readable event: a recv into `fb`, every complete data frame to
/// `on_data`; again while the wire holds bytes (TLS). Err: why the
/// connection is done.
#[inline]
pub fn read_frames(
    s: &impl Wire,
    fb: &mut FrameBuf,
    mut on_data: impl FnMut(&mut FrameBuf, Frame) -> Result<(), String>,
) -> Result<(), String> {
    loop {
        match s.recv(fb.spare()) {
            Ok(0) => return Err("server closed the connection".into()),
            Ok(n) => fb.advance(n),
            Err(e) if sock::transient(&e) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
        while let Some(f) = fb.try_parse().map_err(|e| e.to_string())? {
            if f.opcode == OP_CLOSE {
                return Err("server sent close".into());
            }
            on_data(fb, f)?;
        }
        if !s.buffered() {
            return Ok(());
        }
    }
}

/// One epoll_wait; its error goes to `first_err` (None: the loop ends).
#[inline]
pub fn wait<'a>(
    ep: &sock::Epoll,
    events: &'a mut [libc::epoll_event],
    ms: i32,
    first_err: &mut Option<String>,
) -> Option<&'a [libc::epoll_event]> {
    match ep.wait(events, ms) {
        Ok(ready) => Some(ready),
        Err(e) => {
            first_err.get_or_insert(format!("epoll_wait: {e}"));
            None
        }
    }
}

/// The measured window: what counts is done between the first loop turn at
/// or after `start` and the first at or after `end`, and the CPU marks are
/// taken at those same two turns.
pub struct Window {
    pids: Vec<u32>,
    start: Instant,
    end: Instant,
    mark: Option<CpuMark>,
}

impl Window {
    /// The window from `start` to `end`, for the CPU use of processes `pids`.
    pub fn new(pids: &[u32], start: Instant, end: Instant) -> Window {
        Window { pids: pids.to_vec(), start, end, mark: None }
    }

    /// To be called at the top of every loop turn: opens the window at the
    /// first turn at or after `start`; at the first turn at or after `end`,
    /// closes it and returns the CPU used in it (then the loop ends).
    pub fn turn(&mut self, now: Instant) -> Option<CpuDelta> {
        if self.mark.is_none() && now >= self.start {
            self.mark = Some(CpuMark::now(&self.pids));
        }
        if now >= self.end {
            return self.mark.as_ref().map(|m| m.since(&self.pids));
        }
        None
    }

    /// The window is open: what happens now is counted.
    pub fn measuring(&self) -> bool {
        self.mark.is_some()
    }

    /// How long the next epoll_wait may block: until `end`, `cap` at most,
    /// 1 ms at least.
    pub fn wait_ms(&self, now: Instant, cap: Duration) -> i32 {
        (self.end.saturating_duration_since(now).min(cap).as_millis() as i32).max(1)
    }
}
