//! wsbench: every workload against every server, one server at a time
//! (bench/README.md; normally started by bench/run.sh).

mod broker;
mod client;
mod deflate;
mod hotloop;
mod instructions;
mod procs;
mod report;
mod servers;
mod sock;
mod targets;
mod tls;
mod workloads;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use client::Deflate;
use procs::{rss_kib, Launch, Server};
use report::{Rounds, Row};
use servers::{Family, Spec};
use workloads::{IdleSet, Measure, Timing};

/// What one run measures; `--quick`: the same rows, shorter windows,
/// smaller counts, one round.
pub struct Plan {
    pub quick: bool,
    /// Rounds of the echo and broadcast rows (interleaved; medians reported).
    pub rounds: usize,
    pub bcast_clients: usize,
    pub instr: instructions::InstrPlan,
}

impl Plan {
    fn new(quick: bool, rounds: Option<usize>) -> Plan {
        let (n1, n2) = if quick { (50, 300) } else { (200, 1200) };
        let instr = instructions::InstrPlan { clients: 10, size: 16, n1, n2 };
        let (rounds, bcast_clients) = (rounds.unwrap_or(if quick { 1 } else { 3 }), if quick { 200 } else { 1000 });
        Plan { quick, rounds, bcast_clients, instr }
    }

    /// The cross-server broadcast row's id.
    pub fn cross_id(&self) -> String {
        format!("broadcast_{}c_2srv", self.bcast_clients)
    }

    /// Every row, in table order.
    pub fn workloads(&self) -> Vec<Wl> {
        let n = |x: usize| fmt_count(x as f64);
        let t = |w: u64, m: u64| Timing { warmup: Duration::from_millis(w), measure: Duration::from_millis(m) };
        let q = self.quick;
        let window = if q { t(200, 800) } else { t(1000, 4000) };
        let (connrate_t, deflate_t) = if q { (window, t(100, 400)) } else { (t(500, 4000), window) };
        let mem_steps: &[usize] = if q { &[1000] } else { &[10_000, 100_000] };
        let echo = [
            ("echo_16b_100c", "echo 16 B, 100 connections", 100, 16),
            ("echo_16k_100c", "echo 16 KiB, 100 connections", 100, 16384),
            ("echo_16b_1000c", "echo 16 B, 1,000 connections", 1000, 16),
        ];
        let (c, b, deflate_mem) = (50, self.bcast_clients, mem_steps[0]);
        let ((conns, esize), (clients, bsize)) = ((100, 16384), (b, 16384));
        let how = |on| if on { "deflate on" } else { "deflate off (offered, declined)" };
        let (no, dfl) = (Deflate::NotOffered, |on| if on { Deflate::On } else { Deflate::Off });
        let mut v: Vec<Wl> = Vec::new();
        let mut row = |id: String, label: String, unit, phase, job: Job| {
            let higher = !matches!(unit, "bytes/conn" | "instr/msg");
            let t = match job.0 {
                _ if id.starts_with("deflate_") => deflate_t,
                Kind::Connrate => connrate_t,
                _ => window,
            };
            v.push(Wl { id, label, unit, higher, phase, job, t })
        };
        for (id, label, conns, size) in echo {
            let label = format!("{label}, 1 message in flight each");
            row(id.to_string(), label, "msg/s", "echo", (Kind::Echo, conns, size, no));
        }
        let connrate = format!("connection rate: connect + handshake + close, {c} concurrent");
        row(format!("connrate_{c}"), connrate, "handshakes/s", "echo", (Kind::Connrate, c, 0, no));
        let bcast = format!("broadcast to {b} clients, 1 publisher, window 8 (deliveries/s across clients)");
        row(format!("broadcast_{b}c"), bcast, "deliveries/s", "broadcast", (Kind::Bcast, b, 16, no));
        let cross = format!(
            "broadcast to {b} clients split over 2 server processes on a Redis backplane, publisher on one \
             (server CPU: both servers and redis-server)"
        );
        row(self.cross_id(), cross, "deliveries/s", "cross", (Kind::Bcast, b, 16, no));
        for k in mem_steps {
            let label = format!("memory: server RSS growth per idle connection, {} connections", n(*k));
            row(format!("mem_{}k", k / 1000), label, "bytes/conn", "memory", (Kind::Mem, *k, 0, no));
        }
        // The deflate-off rows run on the plain modes' processes.
        let (ekib, bkib, on_off) = (esize / 1024, bsize / 1024, |on| if on { "on" } else { "off" });
        for on in [false, true] {
            let (id, phase) =
                (format!("deflate_echo_{ekib}k_{conns}c_{}", on_off(on)), if on { "deflate-echo" } else { "echo" });
            let label = format!("echo {ekib} KiB JSON-like text, {conns} connections, {}", how(on));
            row(id, label, "msg/s", phase, (Kind::Echo, conns, esize, dfl(on)));
        }
        for on in [false, true] {
            let id = format!("deflate_bcast_{clients}c_{}", on_off(on));
            let label = format!("broadcast {bkib} KiB JSON-like text to {} clients, window 8, {}", n(clients), how(on));
            let phase = if on { "deflate-broadcast" } else { "broadcast" };
            row(id, label, "deliveries/s", phase, (Kind::Bcast, clients, bsize, dfl(on)));
        }
        // The wss:// rows: the 100-connection echo rows, and the first memory step.
        for (id, label, conns, size) in echo.into_iter().filter(|e| e.2 == 100) {
            let label = format!("wss:// {label}, 1 message in flight each (TLS 1.3, AES-128-GCM)");
            row(format!("wss_{id}"), label, "msg/s", "tls", (Kind::Echo, conns, size, no));
        }
        let k = mem_steps[0];
        let label = format!("memory over TLS: server RSS growth per idle wss:// connection, {} connections", n(k));
        row(format!("mem_{}k_tls", k / 1000), label, "bytes/conn", "tls", (Kind::Mem, k, 0, no));
        let (k, id) = (deflate_mem, format!("deflate_mem_{}k", deflate_mem / 1000));
        let label = format!("memory per idle connection, deflate agreed, {} connections", n(k));
        row(id, label, "bytes/conn", "deflate-echo", (Kind::Mem, k, 0, Deflate::On));
        let instructions::InstrPlan { clients, size, n1, n2 } = self.instr;
        let d = n2 - n1;
        let label = format!(
            "user-space instructions per echoed {size} B message (callgrind: (Ir({n2}) - Ir({n1})) / ({clients} x {d}), \
             {clients} clients x {n1} and x {n2} echoes, one in flight each)"
        );
        let id = format!("instructions_{size}b_{clients}c");
        row(id, label, "instr/msg", "instructions", (Kind::Echo, clients, size, no));
        v
    }

    /// Whether `spec` has row `id` (deflate rows: servers with a deflate mode;
    /// raw-tcp none in quick mode, never deflate_mem; cross: a cross mode;
    /// wss://: a TLS mode).
    pub fn has(&self, spec: &Spec, id: &str) -> bool {
        let Some(w) = self.workloads().into_iter().find(|w| w.id == id) else { return false };
        let raw = spec.family == Family::Ceiling;
        match w.phase {
            "cross" => spec.cross.is_some(),
            "tls" => tls::SERVERS.contains(&spec.name),
            _ => {
                !id.starts_with("deflate_")
                    || (spec.deflate.is_some() && !(raw && (self.quick || w.job.0 == Kind::Mem)))
            }
        }
    }
}

/// One row of the tables: what it measures, in which unit, whether more is
/// better; the server process it runs on (`phase`) and how.
pub struct Wl {
    pub id: String,
    pub label: String,
    pub unit: &'static str,
    pub higher: bool,
    pub phase: &'static str,
    pub job: Job,
    pub t: Timing,
}

/// `x` rounded, with thousands separated by commas.
pub fn fmt_count(x: f64) -> String {
    let digits = (x.round() as i64).unsigned_abs().to_string();
    let groups: Vec<&str> = digits.as_bytes().rchunks(3).rev().map(|g| std::str::from_utf8(g).unwrap()).collect();
    format!("{}{}", if x.round() < 0.0 { "-" } else { "" }, groups.join(","))
}

/// Runs every workload against every server, one server at a time, and
/// reports absolute figures plus the ratio to wsserver (C API).
#[derive(clap::Parser)]
#[command(name = "wsbench")]
struct Args {
    /// Shorter windows, smaller counts, one round: a smoke test.
    #[arg(long)]
    quick: bool,
    /// Rounds of the echo and broadcast rows (default 3, quick 1; 1 to 100).
    #[arg(long, value_name = "N")]
    rounds: Option<usize>,
    /// Repository root.
    #[arg(long, value_name = "DIR", default_value = ".")]
    root: PathBuf,
    /// Output directory (default ROOT/build/bench).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Only these servers.
    #[arg(long, value_name = "a,b", value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Only the rows whose id starts with one of these (without it: every
    /// row, the instruction count only in full mode).
    #[arg(long, value_name = "a,b", value_delimiter = ',')]
    workloads: Option<Vec<String>>,
    /// CPU the servers are pinned to, or none (default 0 on 2+ CPUs).
    #[arg(long, value_name = "N|none", value_parser = parse_cpu)]
    server_cpu: Option<Cpu>,
    /// Only the instruction-count row (callgrind), on wsserver-c, wsserver-poll, libwebsockets, boost-beast,
    /// tokio-tungstenite and raw-tcp unless --only says otherwise.
    #[arg(long)]
    instructions: bool,
}

#[derive(Clone, Copy)]
struct Cpu(Option<usize>);

fn parse_cpu(v: &str) -> Result<Cpu, String> {
    match v {
        "none" => Ok(Cpu(None)),
        _ => v.parse().map(|n| Cpu(Some(n))).map_err(|_| format!("not a CPU number or none: {v}")),
    }
}

/// The servers of the instruction-count row: with `--instructions` and no
/// `--only`, and in a full run.
const INSTR_SERVERS: [&str; 6] =
    ["wsserver-c", "wsserver-poll", "libwebsockets", "boost-beast", "tokio-tungstenite", "raw-tcp"];

/// CPUs online (not just the ones this process may run on: run.sh pins us).
pub fn num_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

struct Ctx {
    plan: Plan,
    out: PathBuf,
    server_cpu: Option<usize>,
    fd_limit: u64,
    wanted: Option<Vec<String>>,
    /// Between workloads: lets the server finish closing connections.
    pause: Duration,
    /// Re-measurements of noisy windows left for this run.
    retries_left: Cell<u32>,
    /// The round being run, from 1.
    round: Cell<usize>,
    /// Every result of each (server, row), one per round, in first-measured order.
    results: RefCell<Vec<(String, String, Rounds)>>,
    /// How each server process ended: (server, "phase: how").
    exits: RefCell<Vec<(&'static str, String)>>,
}

/// Whether row `id` is to be run on `server`: every row unless
/// `--workloads` names prefixes (`wanted`); the instruction-count row
/// (minutes under callgrind) unnamed only in full mode, on [`INSTR_SERVERS`].
fn row_wanted(wanted: Option<&[String]>, quick: bool, id: &str, server: &str) -> bool {
    match wanted {
        None => !id.starts_with("instructions") || (!quick && INSTR_SERVERS.contains(&server)),
        Some(w) => w.iter().any(|p| id.starts_with(p.as_str())),
    }
}

/// How long a server may take to answer its first handshake, and to exit on SIGTERM.
const START: Duration = Duration::from_secs(20);
const GRACE: Duration = Duration::from_secs(5);

/// Above this much CPU (100 = one core) used by everything else during a
/// window, its figures are noisy: measure again, within a budget.
const NOISY_PCT: f64 = 25.0;

/// Runs one workload, again (full mode, 3 times at most, within the retry
/// budget) while others used the CPU; keeps the quietest result.
async fn measured(
    out: Sink<'_>,
    id: &str,
    mut f: impl AsyncFnMut() -> Result<Measure, String>,
) -> Result<Measure, String> {
    let ctx = out.ctx;
    let tries = if ctx.plan.quick { 1 } else { 3 };
    let mut best: Option<Result<Measure, String>> = None;
    for attempt in 1..=tries {
        let r = f().await;
        let other = r.as_ref().ok().and_then(|m| m.other_cpu_pct);
        // The quietest success, else the first failure.
        let noise = |r: &Result<Measure, String>| r.as_ref().map_or(f64::MAX, |m| m.other_cpu_pct.unwrap_or(-1.0));
        if best.as_ref().is_none_or(|b| noise(&r) < noise(b)) {
            best = Some(r);
        }
        match other {
            Some(o) if o > NOISY_PCT && attempt < tries && ctx.retries_left.get() > 0 => {
                ctx.retries_left.set(ctx.retries_left.get() - 1);
                eprintln!("[wsbench] {:<18} {id:<16} other processes used {o:.0}% CPU: measuring again", out.name);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            _ => break,
        }
    }
    let mut r = best.expect("at least one attempt");
    if let Ok(m) = &mut r {
        if let Some(o) = m.other_cpu_pct.filter(|o| *o > NOISY_PCT) {
            let sep = if m.note.is_empty() { "" } else { "; " };
            m.note = format!("noisy: other processes used {o:.0}% CPU{sep}{}", m.note);
        }
    }
    r
}

/// Where one server's results and process exits go.
#[derive(Clone, Copy)]
struct Sink<'a> {
    ctx: &'a Ctx,
    name: &'static str,
}

impl Sink<'_> {
    /// One round's result of row `id`, its progress line on stderr.
    fn add(self, id: &str, r: Result<Measure, String>) {
        let (plan, name) = (&self.ctx.plan, self.name);
        let round = if plan.rounds > 1 { format!("r{}/{} ", self.ctx.round.get(), plan.rounds) } else { String::new() };
        let unit = plan.workloads().into_iter().find(|w| w.id == id).map_or("", |w| w.unit);
        match &r {
            Ok(m) => eprintln!("[wsbench] {round}{name:<18} {id:<16} {:>12} {unit}", fmt_count(m.value)),
            Err(e) => eprintln!("[wsbench] {round}{name:<18} {id:<16} skipped: {e}"),
        }
        self.record(id, r);
    }

    fn record(self, id: &str, r: Result<Measure, String>) {
        let mut results = self.ctx.results.borrow_mut();
        match results.iter_mut().find(|e| e.0 == self.name && e.1 == id) {
            Some(e) => e.2.push(r),
            None => results.push((self.name.to_string(), id.to_string(), vec![r])),
        }
    }

    fn exit(self, phase: &str, how: String) {
        let round = if self.ctx.plan.rounds > 1 { format!("round {} ", self.ctx.round.get()) } else { String::new() };
        self.ctx.exits.borrow_mut().push((self.name, format!("{round}{phase}: {how}")));
    }

    /// The server's log file for one phase (later rounds: one file each).
    fn log(self, phase: &str) -> PathBuf {
        let round = self.ctx.round.get();
        let suffix = if round > 1 { format!("-r{round}") } else { String::new() };
        self.ctx.out.join("logs").join(format!("{}-{phase}{suffix}.log", self.name))
    }
}

/// How a row is measured on a started server, in the order a server
/// process runs them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Idle connections, held in growing steps, against the fresh process's RSS.
    Mem,
    Echo,
    Connrate,
    Bcast,
}

/// How a row is measured: connections (receivers, workers), message size,
/// and what the client offers and expects of deflate.
pub type Job = (Kind, usize, usize, Deflate);

/// One server process started with `launch` (or why there is none), and
/// the rows `jobs` measured on it in order (memory steps first).
async fn phase(out: Sink<'_>, phase: &str, launch: Result<&Launch, &String>, jobs: &[&Wl]) {
    let ctx = out.ctx;
    let started = match launch {
        Ok(l) => Server::start(l, ctx.server_cpu, out.log(phase), START)
            .await
            .map_err(|e| format!("server did not start: {e}")),
        Err(why) => Err(why.clone()),
    };
    let mut srv = match started {
        Ok(s) => s,
        Err(e) => return jobs.iter().for_each(|w| out.add(&w.id, Err(e.clone()))),
    };
    let (addr, pid, tls, raw) = (srv.addr, srv.pid, srv.tls, launch.is_ok_and(|l| l.raw));
    let (mut idle, mut failed): (Option<(IdleSet, u64)>, Option<String>) = (None, None);
    for Wl { id, job: (kind, n, size, dfl), t, .. } in jobs {
        // Clients leave first, so no server has to close 10k+ connections
        // itself within stop()'s grace time.
        if *kind != Kind::Mem && idle.take().is_some() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mode = (raw, *dfl);
        let r = match kind {
            _ if !srv.alive() => Err(format!("server died: {}", srv.log_tail())),
            Kind::Mem => {
                if idle.is_none() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    idle = Some((IdleSet::new(), rss_kib(pid).unwrap_or(0)));
                }
                let (set, base) = idle.as_mut().expect("just set");
                let r = if let Some(f) = &failed {
                    Err(format!("not tried: a smaller step failed ({f})"))
                } else if (*n as u64) + 4096 > ctx.fd_limit {
                    Err(format!("fd limit (ulimit -n) {} is below {n} connections", ctx.fd_limit))
                } else {
                    let limit = Duration::from_secs(if *n > 20_000 { 120 } else { 60 });
                    workloads::memory_step(addr, mode, tls, pid, set, *n, *base, limit).await
                };
                if let Err(e) = &r {
                    failed.get_or_insert(e.chars().take(80).collect());
                }
                r
            }
            Kind::Echo => {
                let (n, size) = (*n, *size);
                measured(out, id, async || match tls {
                    true => workloads::echo::<tls::TlsWire>(addr, mode, pid, n, size, t).await,
                    false => workloads::echo::<std::net::TcpStream>(addr, mode, pid, n, size, t).await,
                })
                .await
            }
            Kind::Connrate => measured(out, id, async || workloads::connrate(addr, raw, pid, *n, t).await).await,
            Kind::Bcast => {
                measured(out, id, async || workloads::broadcast(&[addr], mode, &[pid], *n, *size, 8, t).await).await
            }
        };
        out.add(id, r);
        if *kind != Kind::Mem {
            tokio::time::sleep(ctx.pause).await;
        }
    }
    if idle.take().is_some() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    out.exit(phase, srv.stop(GRACE).await);
}

/// Broadcast across two server processes on one Redis broker, receivers
/// split over both, the publisher on the first.
async fn cross_phase(out: Sink<'_>, launch: Result<&Launch, &String>, w: &Wl) {
    let ctx = out.ctx;
    let r = async {
        let launch = launch.cloned().map_err(String::clone)?;
        let dir = ctx.out.join("logs").join(format!("{}-redis", out.name));
        let _ = std::fs::create_dir_all(&dir);
        let broker = Server::start(&broker::launch(&dir), ctx.server_cpu, dir.join("redis.log"), START).await;
        let broker = broker.map_err(|e| format!("redis-server did not start: {e}"))?;
        let url = format!("redis://{}", broker.addr);
        let argv = launch.argv.iter().map(|a| a.replace("{backplane}", &url)).collect();
        let launch = Launch { argv, raw: launch.raw };
        let mut servers = Vec::new();
        for i in 0..2 {
            let s = Server::start(&launch, ctx.server_cpu, out.log(&format!("cross{i}")), START).await;
            servers.push(s.map_err(|e| format!("server {i} did not start: {e}"))?);
        }
        let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
        let pids: Vec<u32> = servers.iter().map(|s| s.pid).chain([broker.pid]).collect();
        let (_, clients, size, dfl) = w.job;
        let r = measured(out, &w.id, async || {
            workloads::broadcast(&addrs, (launch.raw, dfl), &pids, clients, size, 8, &w.t).await
        })
        .await;
        for (i, s) in servers.into_iter().enumerate() {
            out.exit(&format!("cross{i}"), s.stop(GRACE).await);
        }
        r
    };
    out.add(&w.id, r.await);
}

/// Runs the plan: `rounds` rounds of every server in turn (a drift hits all
/// alike); connection rate, memory and instructions in the first only.
async fn run_all(specs: &[Spec], ctx: &Ctx) {
    let (plan, rows) = (&ctx.plan, ctx.plan.workloads());
    for round in 1..=plan.rounds {
        ctx.round.set(round);
        if plan.rounds > 1 {
            eprintln!("[wsbench] round {round} of {}", plan.rounds);
        }
        let first = round == 1;
        for spec in specs {
            let out = Sink { ctx, name: spec.name };
            let once = |w: &Wl| matches!(w.job.0, Kind::Mem | Kind::Connrate) || w.phase == "instructions";
            let mine: Vec<&Wl> = rows
                .iter()
                .filter(|w| {
                    row_wanted(ctx.wanted.as_deref(), plan.quick, &w.id, spec.name)
                        && plan.has(spec, &w.id)
                        && (first || !once(w))
                })
                .collect();
            if let Some(reason) = &spec.skip {
                if first {
                    mine.iter().for_each(|w| out.record(&w.id, Err(reason.clone())));
                    eprintln!("[wsbench] {:<18} skipped: {reason}", spec.name);
                }
                continue;
            }
            // One process per phase, its rows in `Kind` order (idle connections on the fresh process).
            let tls = tls::launch(spec);
            for p in
                ["echo", "memory", "broadcast", "deflate-echo", "deflate-broadcast", "cross", "tls", "instructions"]
            {
                let mut jobs: Vec<&Wl> = mine.iter().copied().filter(|w| w.phase == p).collect();
                jobs.sort_by_key(|w| w.job.0);
                let launch = match p {
                    "broadcast" => Some(spec.broadcast.as_ref()),
                    "deflate-echo" => spec.deflate.as_ref().map(|d| d.echo.as_ref()),
                    "deflate-broadcast" => spec.deflate.as_ref().map(|d| d.broadcast.as_ref()),
                    "cross" => spec.cross.as_ref().map(|c| c.as_ref()),
                    "tls" => tls.as_ref().map(|t| t.as_ref()),
                    _ => Some(Ok(&spec.echo)),
                };
                let Some(launch) = launch.filter(|_| !jobs.is_empty()) else { continue };
                match p {
                    "cross" => cross_phase(out, launch, jobs[0]).await,
                    "instructions" => {
                        let (mut exits, logs, p) = (Vec::new(), ctx.out.join("logs"), &plan.instr);
                        let r =
                            instructions::measure(&spec.echo, ctx.server_cpu, p, (&logs, spec.name), &mut exits).await;
                        exits.into_iter().for_each(|e| out.exit("instructions", e));
                        out.add(&jobs[0].id, r);
                    }
                    _ => phase(out, p, launch, &jobs).await,
                }
            }
            tokio::time::sleep(ctx.pause).await;
        }
    }
}

fn main() {
    let mut args = <Args as clap::Parser>::parse();
    args.rounds = args.rounds.map(|n| n.clamp(1, 100));
    if args.instructions {
        args.workloads.get_or_insert_with(Vec::new).push("instructions".into());
        args.only.get_or_insert_with(|| INSTR_SERVERS.iter().map(|s| s.to_string()).collect());
        args.rounds.get_or_insert(1);
    }
    let server_cpu = args.server_cpu.map_or((num_cpus() >= 2).then_some(0), |c| c.0);
    // The soft fd limit raised to the hard one; children inherit it.
    let fd_limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let root = std::fs::canonicalize(&args.root).unwrap_or(args.root.clone());
    let out = std::path::absolute(args.out.clone().unwrap_or(args.root.join("build/bench"))).expect("output directory");
    std::fs::create_dir_all(out.join("logs")).expect("cannot create the output directory");
    tls::init(&out.join("tls")); // the wss:// rows' certificates
    let rust_bins = std::env::current_exe().expect("current_exe").parent().unwrap_or(Path::new(".")).to_path_buf();
    let specs = servers::all(&servers::Paths { root: &root, rust_bins: &rust_bins, out: &out });
    let wanted = |s: &Spec| args.only.as_ref().is_none_or(|only| only.iter().any(|o| o == s.name));
    let specs: Vec<Spec> = specs.into_iter().filter(wanted).collect();
    let ctx = Ctx {
        plan: Plan::new(args.quick, args.rounds),
        out: out.clone(),
        server_cpu,
        fd_limit,
        wanted: args.workloads.clone(),
        pause: Duration::from_millis(if args.quick { 100 } else { 300 }),
        retries_left: Cell::new(15),
        round: Cell::new(1),
        results: RefCell::default(),
        exits: RefCell::default(),
    };
    let started = Instant::now();
    eprintln!(
        "[wsbench] {} mode, {} round(s), {} servers, servers on CPU {}, fd limit {fd_limit}",
        if args.quick { "quick" } else { "full" },
        ctx.plan.rounds,
        specs.len(),
        ctx.server_cpu.map(|c| c.to_string()).unwrap_or("(any)".into())
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&rt, run_all(&specs, &ctx));
    let rows: Vec<Row> = ctx.results.take().into_iter().map(|(s, id, r)| Row::from_rounds(s, id, r)).collect();
    let exits = ctx.exits.take();
    let (plan, elapsed) = (&ctx.plan, started.elapsed());
    let rep = report::Report { plan, specs: &specs, rows: &rows, exits: &exits, root: &root, elapsed, server_cpu };
    print!("{}", rep.table());
    let json_path = out.join("results.json");
    match std::fs::write(&json_path, rep.json()) {
        Ok(()) => eprintln!("[wsbench] wrote {}", json_path.display()),
        Err(e) => eprintln!("[wsbench] cannot write {}: {e}", json_path.display()),
    }
    // Figures are never asserted, but a run that measured nothing at all
    // means the harness itself is broken.
    if !rows.iter().any(|r| r.status.is_ok()) {
        eprintln!("[wsbench] no workload could be measured on any server");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::row_wanted;

    #[test]
    fn a_full_run_counts_instructions_on_the_named_servers_only() {
        let id = "instructions_16b_10c";
        assert!(row_wanted(None, false, id, "wsserver-c"));
        assert!(row_wanted(None, false, id, "libwebsockets"));
        assert!(!row_wanted(None, false, id, "node-ws"), "node under callgrind takes minutes");
        assert!(!row_wanted(None, true, id, "wsserver-c"), "quick mode has no instruction row");
        assert!(row_wanted(None, true, "echo_16b_100c", "node-ws"));
        let only = ["instructions".to_string()];
        assert!(row_wanted(Some(&only), true, id, "node-ws"), "asked for by name: any server");
        assert!(!row_wanted(Some(&only), false, "echo_16b_100c", "wsserver-c"));
    }
}
