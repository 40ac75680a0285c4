//! The echo and broadcast hot loops, on plain level-triggered epoll in one
//! thread: per message one read, one write and a share of one epoll_wait,
//! nothing else, so that the load generator stays cheaper per message than
//! the servers it drives (the raw TCP row shows where it saturates).

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::client::{client_frame, message_frame, Frame, FrameBuf, WsConn, OP_CLOSE, OP_TEXT};
use crate::deflate::Agreed;
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
    /// socket, `sock::send_all` waiting 10 s at most for room; the error as
    /// text, like every hot-loop error.
    fn send_all(&self, data: &[u8]) -> Result<(), String>;
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
    fn send_all(&self, data: &[u8]) -> Result<(), String> {
        sock::send_all(self.as_raw_fd(), data, Duration::from_secs(10)).map_err(|e| e.to_string())
    }

    fn from_conn(c: WsConn) -> io::Result<(Self, FrameBuf)> {
        match c.into_inner() {
            (crate::tls::Stream::Left(s), fb) => Ok((s.into_std()?, fb)),
            _ => Err(io::Error::other("a TLS connection has no plain socket to hand over")),
        }
    }
}

/// Sends the pongs `fb` owes the server, if any; the buffer keeps its
/// capacity for the next ones.
#[inline]
fn flush_pending(s: &impl Wire, fb: &mut FrameBuf) -> Result<(), String> {
    if !fb.pending.is_empty() {
        s.send_all(&fb.pending)?;
        fb.pending.clear();
    }
    Ok(())
}

/// One readable event: a recv into `fb`, every complete data frame to
/// `on_data`; again while the wire holds bytes (TLS). Err: why the
/// connection is done.
#[inline]
fn read_frames(
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

/// The measured window: what counts is done between the first loop turn at
/// or after `start` and the first at or after `end`, and the CPU marks are
/// taken at those same two turns.
struct Window {
    pids: Vec<u32>,
    start: Instant,
    end: Instant,
    mark: Option<CpuMark>,
}

impl Window {
    /// The window from `start` to `end`, for the CPU use of processes `pids`.
    fn new(pids: &[u32], start: Instant, end: Instant) -> Window {
        Window { pids: pids.to_vec(), start, end, mark: None }
    }

    /// To be called at the top of every loop turn: opens the window at the
    /// first turn at or after `start`; at the first turn at or after `end`,
    /// closes it, puts the CPU used in it in `cpu` and returns true (then the loop ends).
    fn turn(&mut self, now: Instant, cpu: &mut Option<CpuDelta>) -> bool {
        if self.mark.is_none() && now >= self.start {
            self.mark = Some(CpuMark::now(&self.pids));
        }
        *cpu = self.mark.as_ref().filter(|_| now >= self.end).map(|m| m.since(&self.pids));
        cpu.is_some()
    }

    /// The window is open: what happens now is counted.
    fn measuring(&self) -> bool {
        self.mark.is_some()
    }

    /// One epoll_wait, until `end` (`cap` at most, 1 ms at least); its
    /// error goes to `first_err` (None: the loop ends).
    #[inline]
    fn wait<'a>(
        &self,
        (ep, events): (&sock::Epoll, &'a mut [libc::epoll_event]),
        now: Instant,
        cap: Duration,
        first_err: &mut Option<String>,
    ) -> Option<&'a [libc::epoll_event]> {
        let ms = (self.end.saturating_duration_since(now).min(cap).as_millis() as i32).max(1);
        ep.wait(events, ms).map_err(|e| first_err.get_or_insert(format!("epoll_wait: {e}"))).ok()
    }
}

/// What a hot loop counted.
#[derive(Default)]
pub struct LoopOut {
    /// Messages echoed (broadcast: deliveries) in the window.
    pub done: u64,
    /// Echo: messages completed in the window by each connection still alive.
    pub per_conn: Vec<u64>,
    /// Broadcast: messages published in the window, and those not delivered
    /// to every receiver within 2 s.
    pub published: u64,
    pub stalled: u64,
    pub lat: Vec<u32>,
    /// Connections that failed (each counted once), the first one's reason.
    pub errors: u64,
    pub first_err: Option<String>,
    pub publisher_err: Option<String>,
    /// CPU use over the measured window (None: the window never closed).
    pub cpu: Option<CpuDelta>,
}

impl LoopOut {
    /// The CPU use over the window, or why the window never closed.
    pub fn window(&mut self) -> Result<CpuDelta, String> {
        let why = || format!("measurement window never closed: {}", self.first_err.clone().unwrap_or_default());
        self.cpu.take().ok_or_else(why)
    }
}

struct Conn<W> {
    stream: W,
    fb: FrameBuf,
    alive: bool,
    sent_at: Instant,
    done: u64,
    sent: usize,
}

impl<W: Wire> Conn<W> {
    fn new((stream, fb): (W, FrameBuf)) -> Conn<W> {
        Conn { stream, fb, alive: true, sent_at: Instant::now(), done: 0, sent: 0 }
    }

    /// Leaves the loop (once), counted in `errors`, its reason kept in `first`.
    fn fail(&mut self, ep: &sock::Epoll, errors: &mut u64, first: &mut Option<String>, why: String) {
        if self.alive {
            self.alive = false;
            ep.del(self.stream.as_raw_fd());
            *errors += 1;
            first.get_or_insert(why);
        }
    }
}

/// An epoll instance with `conns` registered, each with its index as token.
fn register<W: Wire>(conns: Vec<(W, FrameBuf)>, out: &mut LoopOut) -> Option<(sock::Epoll, Vec<Conn<W>>)> {
    let ep = sock::Epoll::new().map_err(|e| out.first_err = Some(format!("epoll_create1: {e}"))).ok()?;
    let mut cs: Vec<Conn<W>> = conns.into_iter().map(Conn::new).collect();
    for (i, c) in cs.iter_mut().enumerate() {
        if let Err(e) = ep.add(c.stream.as_raw_fd(), i as u64) {
            c.fail(&ep, &mut out.errors, &mut out.first_err, format!("epoll_ctl: {e}"));
        }
    }
    Some((ep, cs))
}

/// Runs one-message-in-flight echo on every connection until `mend` (or
/// `hard`, or until every connection failed), each sending `frames` in
/// turn; what completes in the window `mstart`..`mend` counts.
pub fn echo<W: Wire>(
    conns: Vec<(W, FrameBuf)>,
    frames: &[Vec<u8>],
    pid: u32,
    mstart: Instant,
    mend: Instant,
    hard: Instant,
) -> LoopOut {
    let mut out = LoopOut { lat: Vec::with_capacity(1 << 20), ..LoopOut::default() };
    let Some((ep, mut cs)) = register(conns, &mut out) else { return out };
    for (i, c) in cs.iter_mut().enumerate().filter(|(_, c)| c.alive) {
        c.sent_at = Instant::now();
        if let Err(e) = c.stream.send_all(&frames[i % frames.len()]) {
            c.fail(&ep, &mut out.errors, &mut out.first_err, e);
        }
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut win = Window::new(&[pid], mstart, mend);
    loop {
        let now = Instant::now();
        if win.turn(now, &mut out.cpu) {
            break;
        }
        // Every connection that failed counts once in `errors`.
        if now >= hard || out.errors as usize == cs.len() {
            break;
        }
        let measuring = win.measuring();
        let ep_events = (&ep, &mut events[..]);
        let Some(ready) = win.wait(ep_events, now, Duration::from_millis(50), &mut out.first_err) else { break };
        for ev in ready {
            let Some(c) = Some(&mut cs[ev.u64 as usize]).filter(|c| c.alive) else { continue };
            let r = read_frames(&c.stream, &mut c.fb, |fb, f| {
                if !f.fin {
                    return Ok(());
                }
                let t = Instant::now();
                if measuring {
                    out.done += 1;
                    c.done += 1;
                    if out.lat.len() < 8_000_000 {
                        out.lat.push(nanos(t - c.sent_at));
                    }
                }
                flush_pending(&c.stream, fb)?;
                c.sent_at = t;
                c.sent += 1;
                c.stream.send_all(&frames[c.sent % frames.len()])
            })
            .and_then(|()| flush_pending(&c.stream, &mut c.fb));
            if let Err(e) = r {
                c.fail(&ep, &mut out.errors, &mut out.first_err, e);
            }
        }
    }
    out.per_conn = cs.iter().filter(|c| c.alive).map(|c| c.done).collect();
    out
}

const RING: usize = 4096;

/// The number of a broadcast message, of either kind; None for anything else.
fn seq_of(f: &Frame) -> Option<u64> {
    let p = &f.prefix[..f.len.min(16)];
    let hex = p.strip_prefix(b"BC").or_else(|| p.strip_prefix(b"[\"BC"))?.get(..8)?;
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// What the publisher sends.
pub enum Msgs {
    /// The 16 B frame, its number rewritten in place.
    Tiny(Vec<u8>),
    /// JSON texts used in turn, their number (bytes 4..12) rewritten, each
    /// message framed (and compressed, when agreed) as it is sent.
    Json { docs: Vec<Vec<u8>>, agreed: Option<Agreed>, frame: Vec<u8> },
}

impl Msgs {
    /// 16 bytes of text, "BC" + 8 hex digits + padding, built once: each
    /// message rewrites its digits in place, so that publishing allocates nothing.
    pub fn tiny() -> Msgs {
        Msgs::Tiny(client_frame(OP_TEXT, b"BC00000000......"))
    }

    fn frame(&mut self, seq: u64) -> &[u8] {
        match self {
            Msgs::Tiny(f) => {
                // The digits of `seq` (its low 32 bits, lower-case hex) after the 2-byte header,
                // the 4-byte key and "BC", masked with the frame's own key.
                for i in 0..8 {
                    f[8 + i] = b"0123456789abcdef"[(seq as u32 >> (28 - 4 * i)) as usize & 0xf] ^ f[2 + ((2 + i) & 3)];
                }
                f
            }
            Msgs::Json { docs, agreed, frame } => {
                let n = docs.len();
                let doc = &mut docs[seq as usize % n];
                doc[4..12].copy_from_slice(format!("{:08x}", seq as u32).as_bytes());
                *frame = message_frame(OP_TEXT, doc, *agreed);
                frame
            }
        }
    }
}

/// Publishes with at most `window` messages in flight: message `s + window`
/// goes out once every receiver got message `s`, or once `s` is 2 s old
/// (then counted as stalled). Deliveries are counted between the first loop
/// turns at or after `mstart` and `mend`, where the CPU marks are taken.
pub fn broadcast(
    receivers: Vec<(TcpStream, FrameBuf)>,
    publisher: (TcpStream, FrameBuf),
    mut msgs: Msgs,
    window: u64,
    pids: &[u32],
    mstart: Instant,
    mend: Instant,
) -> LoopOut {
    let mut out = LoopOut { lat: Vec::with_capacity(1 << 20), ..LoopOut::default() };
    let receivers_n = receivers.len() as u64;
    let Some((ep, mut cs)) = register(receivers, &mut out) else { return out };
    // A failed publisher sets `publisher_err` (and publishing stops).
    let pub_idx = cs.len();
    cs.push(Conn::new(publisher));
    if let Err(e) = ep.add(cs[pub_idx].stream.as_raw_fd(), pub_idx as u64) {
        cs[pub_idx].fail(&ep, &mut 0, &mut out.publisher_err, format!("epoll_ctl: {e}"));
    }
    // Per ring slot: receivers that got the message, when it was sent.
    let (mut count, mut sent_at, mut seq) = (vec![0u32; RING], vec![Instant::now(); RING], 0u64);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 2048];
    let mut win = Window::new(pids, mstart, mend);
    loop {
        let now = Instant::now();
        if win.turn(now, &mut out.cpu) {
            break;
        }
        let measuring = win.measuring();
        // Receivers still connected: a message is complete when all of them got it.
        let live = receivers_n.saturating_sub(out.errors) as u32;
        // Publish while the window allows.
        while out.publisher_err.is_none() && seq < u32::MAX as u64 {
            let old = seq.wrapping_sub(window) as usize % RING;
            if seq >= window && count[old] < live {
                if now - sent_at[old] <= Duration::from_secs(2) {
                    break;
                }
                out.stalled += 1;
            }
            let slot = seq as usize % RING;
            count[slot] = 0;
            sent_at[slot] = Instant::now();
            let p = &mut cs[pub_idx];
            let frame = msgs.frame(seq);
            if let Err(e) = flush_pending(&p.stream, &mut p.fb).and_then(|_| p.stream.send_all(frame)) {
                out.publisher_err = Some(e);
                break;
            }
            out.published += measuring as u64;
            seq += 1;
        }
        let ep_events = (&ep, &mut events[..]);
        let Some(ready) = win.wait(ep_events, now, Duration::from_millis(20), &mut out.first_err) else { break };
        for ev in ready {
            let idx = ev.u64 as usize;
            let Some(c) = Some(&mut cs[idx]).filter(|c| c.alive) else { continue };
            // When this read's messages arrived: after the recv, taken once.
            let mut read_at: Option<Instant> = None;
            let mut r = read_frames(&c.stream, &mut c.fb, |_, f| {
                // Not the publisher's own copy, welcome texts or the like.
                let Some(s) = seq_of(&f).filter(|_| idx != pub_idx) else { return Ok(()) };
                let slot = s as usize % RING;
                count[slot] += 1;
                if measuring {
                    out.done += 1;
                    if out.lat.len() < 4_000_000 {
                        let t = *read_at.get_or_insert_with(Instant::now);
                        out.lat.push(nanos(t - sent_at[slot]));
                    }
                }
                Ok(())
            });
            if idx != pub_idx {
                r = r.and_then(|()| flush_pending(&c.stream, &mut c.fb));
            }
            if let Err(e) = r {
                match idx == pub_idx {
                    true => c.fail(&ep, &mut 0, &mut out.publisher_err, e),
                    false => c.fail(&ep, &mut out.errors, &mut out.first_err, e),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_digits_rewritten_in_place() {
        let mut tiny = Msgs::tiny();
        for seq in [0u64, 1, 0xabc, 0x1234_5678, 0xffff_ffff, 0x1_0000_0007] {
            let fresh = client_frame(OP_TEXT, format!("BC{:08x}......", seq as u32).as_bytes());
            assert_eq!(tiny.frame(seq), fresh, "seq {seq:#x}");
        }
    }

    #[test]
    fn json_messages_are_numbered_and_read_back() {
        let docs: Vec<Vec<u8>> = (0..3).map(|k| crate::deflate::json_doc(2048, k, "\"BC00000000\"")).collect();
        let agreed = Some(Agreed { server_no_context: true, client_bits: 15 });
        for (mut msgs, compressed) in [
            (Msgs::Json { docs: docs.clone(), agreed: None, frame: vec![] }, false),
            (Msgs::Json { docs, agreed, frame: vec![] }, true),
        ] {
            for seq in [0u64, 7, 0x1234_abcd] {
                let frame = msgs.frame(seq).to_vec();
                assert_eq!(frame[0] & 0x40 != 0, compressed);
                let mut fb = FrameBuf::new(8192);
                fb.set_inflater(agreed.filter(|_| compressed));
                fb.spare()[..frame.len()].copy_from_slice(&frame);
                fb.advance(frame.len());
                let f = fb.try_parse().unwrap().unwrap();
                assert_eq!((seq_of(&f), f.len), (Some(seq), 2048));
            }
        }
        let mut tiny = Msgs::tiny();
        let f = tiny.frame(0xbeef).to_vec();
        let mut fb = FrameBuf::new(64);
        fb.spare()[..f.len()].copy_from_slice(&f);
        fb.advance(f.len());
        assert_eq!(seq_of(&fb.try_parse().unwrap().unwrap()), Some(0xbeef));
    }
}
