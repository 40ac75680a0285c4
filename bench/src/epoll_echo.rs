//! The echo workload's hot loop, on plain level-triggered epoll in one
//! thread: per message one read, one write and a share of one epoll_wait,
//! nothing else, so that the load generator stays cheaper per message than
//! the servers it drives (the raw TCP row shows where it saturates).

use std::time::{Duration, Instant};

use crate::client::FrameBuf;
use crate::hotloop::{self, flush_pending, nanos, send_all_nb, Window, Wire};
use crate::procs::CpuDelta;
use crate::sock;

#[derive(Default)]
pub struct EchoOut {
    pub done: u64,
    /// Messages completed in the window by each connection still alive.
    pub per_conn: Vec<u64>,
    pub lat: Vec<u32>,
    pub errors: u64,
    pub first_err: Option<String>,
    /// CPU use over the measured window (None: the window never closed).
    pub cpu: Option<CpuDelta>,
}

struct Conn<W> {
    stream: W,
    fb: FrameBuf,
    sent_at: Instant,
    alive: bool,
    done: u64,
    sent: usize,
}

/// Runs one-message-in-flight echo on every connection until `mend` (or
/// `hard`, or until every connection failed), each sending `frames` in
/// turn; what completes in the window `mstart`..`mend` counts.
pub fn run<W: Wire>(
    conns: Vec<(W, FrameBuf)>,
    frames: &[Vec<u8>],
    pid: u32,
    mstart: Instant,
    mend: Instant,
    hard: Instant,
) -> EchoOut {
    let mut out = EchoOut { lat: Vec::with_capacity(1 << 20), ..EchoOut::default() };
    let ep = match sock::Epoll::new() {
        Ok(ep) => ep,
        Err(e) => {
            out.first_err = Some(format!("epoll_create1: {e}"));
            return out;
        }
    };
    let now = Instant::now();
    let mut cs: Vec<Conn<W>> = conns
        .into_iter()
        .map(|(stream, fb)| Conn { stream, fb, sent_at: now, alive: true, done: 0, sent: 0 })
        .collect();
    let fail = |c: &mut Conn<W>, out: &mut EchoOut, why: String| {
        if c.alive {
            c.alive = false;
            ep.del(c.stream.as_raw_fd());
            out.errors += 1;
            out.first_err.get_or_insert(why);
        }
    };
    for (i, c) in cs.iter_mut().enumerate() {
        if let Err(e) = ep.add(c.stream.as_raw_fd(), i as u64) {
            fail(c, &mut out, format!("epoll_ctl: {e}"));
            continue;
        }
        c.sent_at = Instant::now();
        if let Err(e) = send_all_nb(&c.stream, &frames[i % frames.len()]) {
            fail(c, &mut out, e);
        }
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut win = Window::new(&[pid], mstart, mend);
    loop {
        let now = Instant::now();
        if let Some(cpu) = win.turn(now) {
            out.cpu = Some(cpu);
            break;
        }
        // Every connection that failed counts once in `errors`.
        if now >= hard || out.errors as usize == cs.len() {
            break;
        }
        let measuring = win.measuring();
        let wait_ms = win.wait_ms(now, Duration::from_millis(50));
        let Some(ready) = hotloop::wait(&ep, &mut events, wait_ms, &mut out.first_err) else { break };
        for ev in ready {
            let c = &mut cs[ev.u64 as usize];
            if !c.alive {
                continue;
            }
            let r = hotloop::read_frames(&c.stream, &mut c.fb, |fb, f| {
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
                send_all_nb(&c.stream, &frames[c.sent % frames.len()])
            })
            .and_then(|()| flush_pending(&c.stream, &mut c.fb));
            if let Err(e) = r {
                fail(c, &mut out, e);
            }
        }
    }
    out.per_conn = cs.iter().filter(|c| c.alive).map(|c| c.done).collect();
    out
}
