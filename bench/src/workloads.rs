//! The workloads, each against one started server, each loop ended by a
//! deadline and a count; one thread (current-thread runtime): `Rc`/`Cell`.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream as StdStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::task::spawn_local;
use tokio::time::{sleep, sleep_until, timeout};

use crate::client::{client_frame, letters, message_frame, source_ip, Deflate, FrameBuf, WsConn, OP_BINARY, OP_TEXT};
use crate::deflate::{json_doc, Agreed};
use crate::hotloop::{nanos, Wire};
use crate::procs::{rss_kib, CpuDelta, CpuMark};

/// One measured figure plus what explains it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Measure {
    pub value: f64,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// Server CPU time (user + system) per unit of `value` (message,
    /// delivery, handshake).
    #[serde(rename = "server_cpu_us_per_op")]
    pub server_cpu_us: Option<f64>,
    /// Its user-space part: the server's own code, where WebSocket
    /// implementations differ (the kernel's loopback TCP work is the same
    /// for all of them).
    #[serde(rename = "server_user_us_per_op")]
    pub server_user_us: Option<f64>,
    /// Its system part.
    #[serde(rename = "server_sys_us_per_op")]
    pub server_sys_us: Option<f64>,
    pub server_cpu_pct: Option<f64>,
    pub gen_cpu_pct: Option<f64>,
    /// CPU used by everything else on the machine meanwhile (100% = one core).
    pub other_cpu_pct: Option<f64>,
    pub errors: u64,
    pub note: String,
}

impl Measure {
    /// The figures every timed workload shares: `ops` operations completed
    /// over the window `cpu`, with their latencies in ns (sorted here).
    fn of_window(ops: u64, cpu: &CpuDelta, lat: &mut [u32], errors: u64, note: String) -> Measure {
        lat.sort_unstable();
        let per_op = |secs: f64| (ops > 0).then(|| secs * 1e6 / ops as f64);
        let pct = |secs: f64| Some(100.0 * secs / cpu.wall);
        Measure {
            value: ops as f64 / cpu.wall,
            p50_us: percentile(lat, 0.50),
            p99_us: percentile(lat, 0.99),
            server_cpu_us: per_op(cpu.server.total()),
            server_user_us: per_op(cpu.server.user),
            server_sys_us: per_op(cpu.server.sys),
            server_cpu_pct: pct(cpu.server.total()),
            gen_cpu_pct: pct(cpu.me),
            other_cpu_pct: pct(cpu.other),
            errors,
            note,
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    let i = (sorted.len().checked_sub(1)? as f64 * p).round() as usize;
    Some(sorted[i] as f64 / 1000.0)
}

/// Opens `n` connections, at most `conc` handshakes in flight, from spread
/// source addresses when `spread`, over TLS when `tls`, until `deadline` or
/// the first error; returns what was opened and the error, if any.
pub async fn open_many(
    addr: SocketAddr,
    (raw, dfl): (bool, Deflate),
    tls: bool,
    n: usize,
    conc: usize,
    spread: bool,
    deadline: Instant,
    offset: usize,
) -> (Vec<WsConn>, Option<String>) {
    let dial = |i: usize| async move {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("time limit reached after {i} connections"));
        }
        let dial = WsConn::dial(addr, spread.then(|| source_ip(offset + i)), raw, dfl, tls);
        match timeout(left.min(Duration::from_secs(10)), dial).await {
            Ok(r) => r.map_err(|e| format!("connection {i}: {e}")),
            Err(_) => Err(format!("connection {i}: handshake timed out")),
        }
    };
    let mut dials = futures_util::stream::iter(0..n).map(dial).buffer_unordered(conc.max(1));
    let mut conns = Vec::with_capacity(n);
    while let Some(r) = dials.next().await {
        match r {
            Ok(c) => conns.push(c),
            Err(e) => return (conns, Some(e)),
        }
    }
    (conns, None)
}

/// Opens `n` connections for a hot loop, split evenly over `addrs`, as wires
/// `W` (sockets or `tls::TlsWire`), and the deflate they all agreed.
async fn open_for_loop<W: Wire>(
    addrs: &[SocketAddr],
    mode: (bool, Deflate),
    n: usize,
    what: &str,
) -> Result<(Vec<(W, FrameBuf)>, Option<Agreed>), String> {
    let tls = W::TLS;
    let mut opened = Vec::with_capacity(n);
    for (i, addr) in addrs.iter().enumerate() {
        let k = n / addrs.len() + (i < n % addrs.len()) as usize;
        let (conns, err) =
            open_many(*addr, mode, tls, k, 64, k > 1000, Instant::now() + Duration::from_secs(60), 0).await;
        let got = opened.len() + conns.len();
        opened.extend(conns);
        if let Some(e) = err {
            return Err(format!("opened {got} of {n}{what}: {e}"));
        }
    }
    let agreed = opened.first().and_then(|c| c.agreed);
    if let Some(c) = opened.iter().find(|c| c.agreed != agreed) {
        return Err(format!("connections agreed different deflate parameters: {agreed:?}, {:?}", c.agreed));
    }
    let parts: Result<Vec<_>, String> =
        opened.into_iter().map(|c| W::from_conn(c).map_err(|e| format!("into_std: {e}"))).collect();
    Ok((parts?, agreed))
}

/// How many different JSON texts a deflate row rotates through, so that a
/// server keeping its compression context is not handed the same text again.
const DOCS: u64 = 8;

/// The note of a deflate row: what was agreed, and our messages' size.
fn deflate_note(agreed: Option<Agreed>, frames: &[Vec<u8>], size: usize) -> String {
    let Some(a) = agreed else { return "deflate declined".into() };
    let keeps = if a.server_no_context { "server_no_context_takeover" } else { "the server keeps its context" };
    let mut note = format!("deflate agreed ({keeps})");
    if !frames.is_empty() {
        let mean = frames.iter().map(|f| f.len()).sum::<usize>() / frames.len();
        let _ = write!(note, ", we send {size} B as {mean} B");
    }
    note
}

#[derive(Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub measure: Duration,
}

impl Timing {
    /// Start and end of the measured window, when the warm-up begins now.
    pub fn window_from_now(&self) -> (Instant, Instant) {
        let start = Instant::now() + self.warmup;
        (start, start + self.measure)
    }
}

/// Echo: `conns` connections (`W`: over TLS or not), one `size` B message in
/// flight each: binary, or with deflate offered, JSON-like text (compressed when agreed).
pub async fn echo<W: Wire>(
    addr: SocketAddr,
    (raw, dfl): (bool, Deflate),
    pid: u32,
    conns: usize,
    size: usize,
    t: &Timing,
) -> Result<Measure, String> {
    let (parts, agreed) = open_for_loop::<W>(&[addr], (raw, dfl), conns, "").await?;
    let frames: Vec<Vec<u8>> = if dfl == Deflate::NotOffered {
        vec![client_frame(OP_BINARY, &letters(size))]
    } else {
        (0..DOCS).map(|k| message_frame(OP_TEXT, &json_doc(size, k, ""), agreed)).collect()
    };
    let (mstart, mend) = t.window_from_now();
    let hard = mend + Duration::from_secs(3);
    // The hot loop blocks this (only) thread on purpose: nothing else runs
    // during an echo workload.
    let mut r = crate::hotloop::echo(parts, &frames, pid, mstart, mend, hard);
    let cpu = r.window()?;
    // Fairness: how the least served connection fared against the mean.
    let mean = r.per_conn.iter().sum::<u64>() as f64 / r.per_conn.len().max(1) as f64;
    let min = r.per_conn.iter().min().copied().unwrap_or(0) as f64;
    let unfair = (r.per_conn.len() > 1 && mean > 0.0 && min < 0.5 * mean)
        .then(|| format!("unfair: least served connection got {:.0}% of the mean", 100.0 * min / mean));
    let deflate = (dfl != Deflate::NotOffered).then(|| deflate_note(agreed, &frames, size));
    let failed = r.first_err.take().map(|e| format!("{} connection(s) failed: {e}", r.errors));
    let note = unfair.into_iter().chain(deflate).chain(failed).collect::<Vec<_>>().join("; ");
    if r.done == 0 {
        return Err(if note.is_empty() { "no message echoed".into() } else { format!("no message echoed ({note})") });
    }
    Ok(Measure::of_window(r.done, &cpu, &mut r.lat, r.errors, note))
}

/// Broadcast: `clients` receivers (split over `addrs`), one publisher (on
/// the first) keeping `window` messages in flight: 16 B text, or with
/// deflate offered, `size` B of JSON-like text; `pids`: whose CPU counts.
pub async fn broadcast(
    addrs: &[SocketAddr],
    (raw, dfl): (bool, Deflate),
    pids: &[u32],
    clients: usize,
    size: usize,
    window: u64,
    t: &Timing,
) -> Result<Measure, String> {
    let (parts, agreed) = open_for_loop(addrs, (raw, dfl), clients, " receivers").await?;
    let deadline = Instant::now() + Duration::from_secs(10); // the publisher's handshake
    let (mut publisher, err) = open_many(addrs[0], (raw, dfl), false, 1, 1, false, deadline, 0).await;
    let publisher = publisher.pop().ok_or_else(|| format!("publisher: {}", err.unwrap_or_default()))?;
    // Let welcome messages and the like arrive before the clock starts.
    sleep(Duration::from_millis(200)).await;
    let msgs = if dfl == Deflate::NotOffered {
        crate::hotloop::Msgs::tiny()
    } else {
        let docs = (0..DOCS).map(|k| json_doc(size, k, "\"BC00000000\"")).collect();
        crate::hotloop::Msgs::Json { docs, agreed, frame: Vec::new() }
    };
    let publisher = StdStream::from_conn(publisher).map_err(|e| format!("into_std: {e}"))?;
    let (mstart, mend) = t.window_from_now();
    // Blocks this thread on purpose: nothing else runs meanwhile.
    let mut r = crate::hotloop::broadcast(parts, publisher, msgs, window, pids, mstart, mend);
    let cpu = r.window()?;
    let sample = || [message_frame(OP_TEXT, &json_doc(size, 0, "\"BC00000000\""), agreed)];
    let deflate = (dfl != Deflate::NotOffered).then(|| deflate_note(agreed, &sample(), size));
    let published = format!("{:.0} msg/s published", r.published as f64 / cpu.wall);
    let stalled = (r.stalled > 0).then(|| format!("{} message(s) not delivered to all within 2 s", r.stalled));
    let publisher = r.publisher_err.take().map(|e| format!("publisher failed: {e}"));
    let receivers = r.first_err.take().map(|e| format!("{} receiver(s) failed: {e}", r.errors));
    let notes: Vec<String> =
        deflate.into_iter().chain([published]).chain(stalled).chain(publisher).chain(receivers).collect();
    let note = notes.join(", ");
    if r.done == 0 {
        return Err(format!("nothing delivered ({note})"));
    }
    Ok(Measure::of_window(r.done, &cpu, &mut r.lat, r.errors, note))
}

/// Connection rate: `conc` workers loop connect, handshake, close (raw TCP:
/// connect, one 16 B round trip, close).
pub async fn connrate(addr: SocketAddr, raw: bool, pid: u32, conc: usize, t: &Timing) -> Result<Measure, String> {
    let (mstart, mend) = t.window_from_now();
    let counter = Rc::new(Cell::new(0usize));
    let probe = Rc::new(client_frame(OP_BINARY, b"0123456789abcdef"));
    // Cycles done in the window, their latencies, failed cycles, the first failure.
    let stats: Rc<RefCell<(u64, Vec<u32>, u64, Option<String>)>> = Rc::default();
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let (counter, probe, stats) = (counter.clone(), probe.clone(), stats.clone());
            spawn_local(async move {
                let mut errors = 0;
                while Instant::now() < mend && errors <= 1000 {
                    let (s, i) = (Instant::now(), counter.replace(counter.get() + 1));
                    let cycle = async {
                        let mut c = WsConn::dial(addr, Some(source_ip(i)), raw, Deflate::NotOffered, false).await?;
                        if raw {
                            c.roundtrip(&probe).await.map(drop)
                        } else {
                            c.close().await
                        }
                    };
                    let r = timeout(Duration::from_secs(5), cycle).await;
                    let (e, mut st) = (Instant::now(), stats.borrow_mut());
                    match r
                        .map_err(|_| "cycle timed out after 5 s".to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                    {
                        Ok(()) if s >= mstart && e <= mend => {
                            st.0 += 1;
                            st.1.push(nanos(e - s));
                        }
                        Ok(()) => {}
                        Err(why) => {
                            (errors, st.2) = (errors + 1, st.2 + 1);
                            st.3.get_or_insert(why);
                        }
                    }
                }
            })
        })
        .collect();
    sleep_until(mstart.into()).await;
    let mark = CpuMark::now(&[pid]);
    sleep_until(mend.into()).await;
    let cpu = mark.since(&[pid]);
    for task in tasks {
        let _ = task.await;
    }
    let (total, mut lat, errors, first_err) = stats.take();
    let note = first_err.map(|e| format!("{errors} failed cycle(s): {e}")).unwrap_or_default();
    if total == 0 {
        return Err(format!("no handshake completed ({note})"));
    }
    Ok(Measure::of_window(total, &cpu, &mut lat, errors, note))
}

/// Idle connections held open by the memory workload.
pub type IdleSet = Vec<TcpStream>;

/// Memory: grows the idle set to `target` connections; the server's RSS
/// growth per connection in bytes, against `base_kib`.
pub async fn memory_step(
    addr: SocketAddr,
    mode: (bool, Deflate),
    tls: bool,
    pid: u32,
    set: &mut IdleSet,
    target: usize,
    base_kib: u64,
    limit: Duration,
) -> Result<Measure, String> {
    let need = target.saturating_sub(set.len());
    let t0 = Instant::now();
    let (conns, err) = open_many(addr, mode, tls, need, 64, true, t0 + limit, set.len()).await;
    let agreed = conns.first().and_then(|c| c.agreed);
    set.extend(conns.into_iter().map(WsConn::into_stream));
    if let Some(e) = err {
        return Err(format!("opened {} of {target}: {e}", set.len()));
    }
    let open_secs = t0.elapsed().as_secs_f64();
    // Let the server settle (lazy allocations, deferred frees).
    sleep(Duration::from_millis(if target <= 1000 { 500 } else { 1000 })).await;
    let rss = rss_kib(pid).ok_or("server gone")?;
    // How many of the held connections the server has not closed.
    let mut b = [0u8; 256];
    let alive = (set.iter())
        .filter(|s| match s.try_read(&mut b) {
            Ok(n) => n > 0, // e.g. a keep-alive ping: still open
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        })
        .count();
    let per_conn = (rss as f64 - base_kib as f64) * 1024.0 / target as f64;
    let mut note = format!("RSS {} MiB at {target} connections, opened in {open_secs:.1} s", rss / 1024);
    if mode.1 == Deflate::On {
        // open_many failed any connection that did not agree deflate.
        let _ = write!(note, ", every connection: {}", deflate_note(agreed, &[], 0));
    }
    if alive < target {
        note.push_str(&format!(", only {alive} still open"));
    }
    Ok(Measure { value: per_conn, errors: (target - alive) as u64, note, ..Measure::default() })
}
