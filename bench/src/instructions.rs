//! The instruction-count row: the server's echo mode twice under callgrind
//! (`n1`, then `n2` echoes per client), the difference of the two `Ir`
//! totals over that of the messages, so start-up and shutdown cancel out.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::time::timeout;

use crate::client::{client_frame, letters, Deflate, WsConn, OP_TEXT};
use crate::procs::{Launch, Server};
use crate::workloads::Measure;

/// What one instruction-count row runs.
#[derive(Clone, Copy, Debug)]
pub struct InstrPlan {
    pub clients: usize,
    pub size: usize,
    /// Messages per client in the first and the second run.
    pub n1: usize,
    pub n2: usize,
}

/// The total instruction count of a callgrind out file: its `totals:` line
/// (or `summary:`, which older versions write), first event (`Ir`, the
/// default and only event without cache simulation).
pub fn callgrind_total(text: &str) -> Option<u64> {
    let events = text.lines().find_map(|l| l.strip_prefix("events:")).map(|e| e.split_whitespace().next());
    events.is_none_or(|first| first == Some("Ir")).then_some(())?;
    ["totals:", "summary:"]
        .iter()
        .find_map(|key| text.lines().find_map(|l| l.strip_prefix(key)))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Instructions per message from the totals of two runs, `ir1` with
/// `msgs1` messages echoed and `ir2` with `msgs2` (more).
pub fn per_message(ir1: u64, msgs1: u64, ir2: u64, msgs2: u64) -> Result<f64, String> {
    if msgs2 <= msgs1 {
        return Err(format!("the second run echoed {msgs2} messages, not more than the first's {msgs1}"));
    }
    if ir2 < ir1 {
        return Err(format!("fewer instructions with more messages ({ir1} for {msgs1}, {ir2} for {msgs2})"));
    }
    Ok((ir2 - ir1) as f64 / (msgs2 - msgs1) as f64)
}

/// `launch` under callgrind, counts written to `out_file`.
fn under_callgrind(launch: &Launch, out_file: &Path) -> Launch {
    let head = ["valgrind".into(), "--tool=callgrind".into(), format!("--callgrind-out-file={}", out_file.display())];
    Launch { argv: [&head[..], &launch.argv].concat(), raw: launch.raw }
}

/// `clients` connections, each echoing `n` messages of `size` bytes one at
/// a time, all at once; the messages echoed in all.
async fn echo_clients(addr: std::net::SocketAddr, raw: bool, p: &InstrPlan, n: usize) -> Result<u64, String> {
    let mut conns = Vec::new();
    for i in 0..p.clients {
        let c = timeout(Duration::from_secs(30), WsConn::dial(addr, None, raw, Deflate::NotOffered, false))
            .await
            .map_err(|_| format!("connection {i}: handshake timed out"))?
            .map_err(|e| format!("connection {i}: {e}"))?;
        conns.push(c);
    }
    let (frame, size) = (client_frame(OP_TEXT, &letters(p.size)), p.size);
    let echo = |mut c: WsConn| {
        let frame = &frame;
        async move {
            for k in 0..n {
                let f = c.roundtrip(frame).await.map_err(|e| format!("message {k}: {e}"))?;
                if f.len != size {
                    return Err(format!("message {k}: {} bytes echoed, not {size}", f.len));
                }
            }
            c.close().await.map_err(|e| format!("close: {e}"))
        }
    };
    futures_util::future::try_join_all(conns.into_iter().map(echo)).await?;
    Ok((p.clients * n) as u64)
}

/// One run under callgrind: start, `n` echoes per client, stop; the
/// messages echoed, the total instruction count and how the server ended.
async fn one_run(
    launch: &Launch,
    cpu: Option<usize>,
    p: &InstrPlan,
    n: usize,
    (out_file, log): (PathBuf, PathBuf),
) -> Result<(u64, u64, String), String> {
    let _ = std::fs::remove_file(&out_file);
    let srv = Server::start(&under_callgrind(launch, &out_file), cpu, log, Duration::from_secs(60))
        .await
        .map_err(|e| format!("server did not start under callgrind: {e}"))?;
    let echoed = timeout(Duration::from_secs(300), echo_clients(srv.addr, launch.raw, p, n)).await;
    // The clients have closed; let the server finish with them before the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let how = srv.stop(Duration::from_secs(60)).await;
    let echoed = echoed.map_err(|_| format!("{n} echoes per client not done in 300 s"))??;
    let text = std::fs::read_to_string(&out_file)
        .map_err(|e| format!("no callgrind counts ({}: {e}); the server {how}", out_file.display()))?;
    let ir = callgrind_total(&text).ok_or_else(|| format!("no totals line in {}", out_file.display()))?;
    Ok((echoed, ir, how))
}

/// The row: two runs, their difference per message. `logs`: where the
/// server logs and callgrind files go; `name`: the server's row name;
/// `exits`: how each run's server ended.
pub async fn measure(
    launch: &Launch,
    cpu: Option<usize>,
    p: &InstrPlan,
    (logs, name): (&Path, &str),
    exits: &mut Vec<String>,
) -> Result<Measure, String> {
    let dir = logs.join("callgrind");
    let _ = std::fs::create_dir_all(&dir);
    let started = Instant::now();
    let mut runs = Vec::new();
    for n in [p.n1, p.n2] {
        let files = (dir.join(format!("{name}-{n}.out")), logs.join(format!("{name}-callgrind-{n}.log")));
        let (echoed, ir, how) = one_run(launch, cpu, p, n, files).await?;
        exits.push(format!("callgrind {n}: {how}"));
        runs.push((echoed, ir, how));
    }
    let ((m1, ir1, how1), (m2, ir2, how2)) = (&runs[0], &runs[1]);
    let value = per_message(*ir1, *m1, *ir2, *m2)?;
    let (n, InstrPlan { clients, size, n1, n2 }) = (|x: u64| crate::fmt_count(x as f64), *p);
    let secs = started.elapsed().as_secs_f64();
    let mut note = format!(
        "Ir {} for {} msgs, {} for {} ({clients} clients x {n1}/{n2} echoes of {size} B text, wsbench's Rust client; {secs:.0} s)",
        n(*ir1), n(*m1), n(*ir2), n(*m2)
    );
    // A server that did not end on SIGTERM by itself was killed: callgrind
    // then wrote nothing, so only an unusual clean end is worth a word.
    if let Some(how) = [how1, how2].into_iter().find(|h| *h != "exit 0") {
        note.push_str(&format!("; server ended: {how}"));
    }
    Ok(Measure { value, note, ..Measure::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 4242\ncmd:  ./echo_server 127.0.0.1 9000\npart: 1\n\n\ndesc: I1 cache: \ndesc: D1 cache: \ndesc: LL cache: \n\ndesc: Timerange: Basic block 0 - 1234\ndesc: Trigger: Program termination\n\npositions: line\nevents: Ir\nsummary: 9876543\n\n\nfl=(1) ???\nfn=(1) 0x0000000000001080\n0 12\n\ntotals: 9876543\n";

    #[test]
    fn callgrind_totals_are_read_from_the_out_file() {
        assert_eq!(callgrind_total(OUT), Some(9_876_543));
        // Only `summary:` (older callgrind), or only `totals:`.
        assert_eq!(callgrind_total(&OUT.replace("totals: 9876543\n", "")), Some(9_876_543));
        assert_eq!(callgrind_total(&OUT.replace("summary: 9876543\n", "")), Some(9_876_543));
        // Several events: the first is the count, when it is Ir.
        let cache = OUT.replace("events: Ir", "events: Ir Dr Dw").replace("totals: 9876543", "totals: 555 66 77");
        assert_eq!(callgrind_total(&cache.replace("summary: 9876543\n", "")), Some(555));
        // Some other first event, no totals, or garbage: nothing.
        assert_eq!(callgrind_total(&OUT.replace("events: Ir", "events: Dr")), None);
        assert_eq!(callgrind_total("events: Ir\n"), None);
        assert_eq!(callgrind_total("totals: lots\n"), None);
        assert_eq!(callgrind_total(""), None);
    }

    #[test]
    fn the_figure_is_the_difference_of_two_runs_per_message() {
        // 10 clients x 200 and x 1,200: 10,000 messages more, 30,630,000 instructions more.
        assert_eq!(per_message(50_000_000, 2_000, 80_630_000, 12_000), Ok(3_063.0));
        assert_eq!(per_message(100, 10, 100, 20), Ok(0.0));
        assert!(per_message(100, 10, 200, 10).unwrap_err().contains("not more"));
        assert!(per_message(300, 10, 200, 20).unwrap_err().contains("fewer instructions"));
    }

    #[test]
    fn the_server_runs_under_callgrind_with_its_own_command_line() {
        let l = Launch { argv: vec!["/x/echo_server".into(), "127.0.0.1".into(), "{port}".into()], raw: false };
        let v = under_callgrind(&l, Path::new("/tmp/o.out")).argv.join(" ");
        assert_eq!(v, "valgrind --tool=callgrind --callgrind-out-file=/tmp/o.out /x/echo_server 127.0.0.1 {port}");
    }
}
