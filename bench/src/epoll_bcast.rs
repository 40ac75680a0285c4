//! The broadcast hot loop (epoll, one thread): the publisher sends numbered
//! text (16 B "BC" + 8 hex digits, or JSON-like `["BC0000002a",{...`),
//! every receiver counts what it gets.

use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::client::{client_frame, message_frame, Frame, FrameBuf, OP_TEXT};
use crate::deflate::Agreed;
use crate::hotloop::{self, flush_pending, nanos, send_all_nb, Window};
use crate::procs::CpuDelta;
use crate::sock;

const RING: usize = 4096;

/// Broadcast frame `seq`: 16 bytes of text, "BC" + 8 hex digits + padding.
/// Built once; `set_seq` then rewrites its 8 digits in place for each
/// message, so that publishing allocates nothing.
fn bcast_frame(seq: u64) -> Vec<u8> {
    let mut f = client_frame(OP_TEXT, b"BC00000000......");
    set_seq(&mut f, seq);
    f
}

/// Writes the digits of `seq` (its low 32 bits, lower-case hex) into a frame
/// made by `bcast_frame`, masked with the frame's own key.
fn set_seq(f: &mut [u8], seq: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // 2-byte header (payload < 126 bytes), then the 4-byte key, then "BC".
    let (mask, digits) = (2, 2 + 4 + 2);
    for i in 0..8 {
        let nibble = (seq as u32 >> (28 - 4 * i)) & 0xf;
        f[digits + i] = HEX[nibble as usize] ^ f[mask + ((2 + i) & 3)];
    }
}

fn parse_hex8(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(b.get(..8)?).ok()?;
    u64::from_str_radix(s, 16).ok()
}

/// The number of a broadcast message, of either kind; None for anything else.
fn seq_of(f: &Frame) -> Option<u64> {
    let p = &f.prefix[..f.len.min(16)];
    parse_hex8(p.strip_prefix(b"BC").or_else(|| p.strip_prefix(b"[\"BC"))?)
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
    pub fn tiny() -> Msgs {
        Msgs::Tiny(bcast_frame(0))
    }

    pub fn json(docs: Vec<Vec<u8>>, agreed: Option<Agreed>) -> Msgs {
        Msgs::Json { docs, agreed, frame: Vec::new() }
    }

    fn frame(&mut self, seq: u64) -> &[u8] {
        match self {
            Msgs::Tiny(f) => {
                set_seq(f, seq);
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

#[derive(Default)]
pub struct BcastOut {
    pub delivered: u64,
    pub published: u64,
    pub stalled: u64,
    pub lat: Vec<u32>,
    pub errors: u64,
    pub first_err: Option<String>,
    pub publisher_err: Option<String>,
    pub cpu: Option<CpuDelta>,
}

struct Conn {
    stream: TcpStream,
    fb: FrameBuf,
    alive: bool,
}

/// Publishes with at most `window` messages in flight: message `s + window`
/// goes out once every receiver got message `s`, or once `s` is 2 s old
/// (then counted as stalled). Deliveries are counted between the first loop
/// turns at or after `mstart` and `mend`, where the CPU marks are taken.
pub fn run(
    receivers: Vec<(TcpStream, FrameBuf)>,
    publisher: (TcpStream, FrameBuf),
    mut msgs: Msgs,
    window: u64,
    pids: &[u32],
    mstart: Instant,
    mend: Instant,
) -> BcastOut {
    let mut out = BcastOut { lat: Vec::with_capacity(1 << 20), ..BcastOut::default() };
    let receivers_n = receivers.len() as u64;
    let ep = match sock::Epoll::new() {
        Ok(ep) => ep,
        Err(e) => {
            out.first_err = Some(format!("epoll_create1: {e}"));
            return out;
        }
    };
    let mut cs: Vec<Conn> = receivers.into_iter().map(|(stream, fb)| Conn { stream, fb, alive: true }).collect();
    cs.push(Conn { stream: publisher.0, fb: publisher.1, alive: true });
    let pub_idx = cs.len() - 1;
    // A failed receiver counts once in `errors`; a failed publisher sets
    // `publisher_err` (and publishing stops).
    let fail = |c: &mut Conn, is_pub: bool, out: &mut BcastOut, why: String| {
        c.alive = false;
        ep.del(c.stream.as_raw_fd());
        if is_pub {
            out.publisher_err.get_or_insert(why);
        } else {
            out.errors += 1;
            out.first_err.get_or_insert(why);
        }
    };
    for (i, c) in cs.iter_mut().enumerate() {
        if let Err(e) = ep.add(c.stream.as_raw_fd(), i as u64) {
            fail(c, i == pub_idx, &mut out, format!("epoll_ctl: {e}"));
        }
    }
    let start = Instant::now();
    let mut count = vec![0u32; RING];
    let mut sent_at = vec![start; RING];
    let mut seq: u64 = 0;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 2048];
    let mut win = Window::new(pids, mstart, mend);
    loop {
        let now = Instant::now();
        if let Some(cpu) = win.turn(now) {
            out.cpu = Some(cpu);
            break;
        }
        let measuring = win.measuring();
        // Receivers still connected: a message is complete when all of them got it.
        let live = receivers_n.saturating_sub(out.errors) as u32;
        // Publish while the window allows.
        while out.publisher_err.is_none() && seq < u32::MAX as u64 {
            if seq >= window {
                let old = (seq - window) as usize % RING;
                if count[old] < live {
                    if now - sent_at[old] > Duration::from_secs(2) {
                        out.stalled += 1;
                    } else {
                        break;
                    }
                }
            }
            let slot = seq as usize % RING;
            count[slot] = 0;
            sent_at[slot] = Instant::now();
            let p = &mut cs[pub_idx];
            let frame = msgs.frame(seq);
            if let Err(e) = flush_pending(&p.stream, &mut p.fb).and_then(|_| send_all_nb(&p.stream, frame)) {
                out.publisher_err = Some(e);
                break;
            }
            if measuring {
                out.published += 1;
            }
            seq += 1;
        }
        let wait_ms = win.wait_ms(now, Duration::from_millis(20));
        let Some(ready) = hotloop::wait(&ep, &mut events, wait_ms, &mut out.first_err) else { break };
        for ev in ready {
            let idx = ev.u64 as usize;
            let c = &mut cs[idx];
            if !c.alive {
                continue;
            }
            // When this read's messages arrived: after the recv, taken once.
            let mut read_at: Option<Instant> = None;
            let mut r = hotloop::read_frames(&c.stream, &mut c.fb, |_, f| {
                // Not the publisher's own copy, welcome texts or the like.
                let Some(s) = seq_of(&f).filter(|_| idx != pub_idx) else { return Ok(()) };
                let slot = s as usize % RING;
                count[slot] += 1;
                if measuring {
                    out.delivered += 1;
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
                fail(c, idx == pub_idx, &mut out, e);
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
        let mut f = bcast_frame(0);
        for seq in [0u64, 1, 0xabc, 0x1234_5678, 0xffff_ffff, 0x1_0000_0007] {
            set_seq(&mut f, seq);
            let fresh = client_frame(OP_TEXT, format!("BC{:08x}......", seq as u32).as_bytes());
            assert_eq!(f, fresh, "seq {seq:#x}");
        }
    }

    #[test]
    fn json_messages_are_numbered_and_read_back() {
        let docs: Vec<Vec<u8>> = (0..3).map(|k| crate::deflate::json_doc(2048, k, "\"BC00000000\"")).collect();
        let agreed = Some(Agreed { server_no_context: true, client_bits: 15 });
        for (msgs, compressed) in [(Msgs::json(docs.clone(), None), false), (Msgs::json(docs, agreed), true)] {
            let mut msgs = msgs;
            for seq in [0u64, 7, 0x1234_abcd] {
                let frame = msgs.frame(seq).to_vec();
                assert_eq!(frame[0] & 0x40 != 0, compressed);
                let mut fb = FrameBuf::new(8192);
                if compressed {
                    fb.set_inflater(true);
                }
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
