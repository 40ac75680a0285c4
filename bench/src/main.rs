//! wsbench: runs every workload against every server, one server at a time,
//! and reports absolute figures plus the ratio to wsserver (C API).
//!
//! Usage: wsbench [--quick] [--rounds N] [--root DIR] [--out DIR] [--only a,b]
//!                [--workloads a,b] [--server-cpu N]
//!
//! Normally started by bench/run.sh, which builds the peers, raises the fd
//! limit and pins this process to CPU 1; servers are started pinned to CPU 0.

mod broker;
mod client;
mod epoll_bcast;
mod epoll_echo;
mod hotloop;
mod procs;
mod report;
mod servers;
mod sock;
mod targets;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procs::{rss_kib, Server};
use report::{Rounds, Row};
use servers::Spec;
use workloads::{IdleSet, Measure, Timing};

/// What one run measures; `--quick` shrinks durations and counts.
pub struct Plan {
    pub quick: bool,
    /// How many times the echo and broadcast rows are measured per server,
    /// interleaved across servers; each figure reported is the median.
    pub rounds: usize,
    pub echo_t: Timing,
    pub echo: Vec<(&'static str, String, usize, usize)>,
    pub connrate_conc: usize,
    pub connrate_t: Timing,
    pub bcast_clients: usize,
    pub bcast_t: Timing,
    pub mem_steps: Vec<usize>,
}

impl Plan {
    fn new(quick: bool, rounds: Option<usize>) -> Plan {
        let t = |w: u64, m: u64| Timing { warmup: Duration::from_millis(w), measure: Duration::from_millis(m) };
        let full = Plan {
            quick,
            rounds: rounds.unwrap_or(3),
            echo_t: t(1000, 4000),
            echo: vec![
                ("echo_16b_100c", "echo 16 B, 100 connections".into(), 100, 16),
                ("echo_16k_100c", "echo 16 KiB, 100 connections".into(), 100, 16384),
                ("echo_16b_1000c", "echo 16 B, 1,000 connections".into(), 1000, 16),
            ],
            connrate_conc: 50,
            connrate_t: t(500, 4000),
            bcast_clients: 1000,
            bcast_t: t(1000, 4000),
            mem_steps: vec![10_000, 100_000],
        };
        if !quick {
            return full;
        }
        // Quick: the same rows, shorter windows, smaller counts, one round.
        Plan {
            rounds: rounds.unwrap_or(1),
            echo_t: t(200, 800),
            connrate_t: t(200, 800),
            bcast_clients: 200,
            bcast_t: t(200, 800),
            mem_steps: vec![1000],
            ..full
        }
    }

    /// The cross-server broadcast row's id.
    pub fn cross_id(&self) -> String {
        format!("broadcast_{}c_2srv", self.bcast_clients)
    }

    /// (id, label, unit, higher is better) of every row, in table order.
    pub fn workloads(&self) -> Vec<(String, String, &'static str, bool)> {
        let mut v: Vec<(String, String, &'static str, bool)> = Vec::new();
        for (id, label, _, _) in &self.echo {
            v.push((id.to_string(), format!("{label}, 1 message in flight each"), "msg/s", true));
        }
        v.push((
            format!("connrate_{}", self.connrate_conc),
            format!("connection rate: connect + handshake + close, {} concurrent", self.connrate_conc),
            "handshakes/s",
            true,
        ));
        v.push((
            format!("broadcast_{}c", self.bcast_clients),
            format!("broadcast to {} clients, 1 publisher, window 8 (deliveries/s across clients)", self.bcast_clients),
            "deliveries/s",
            true,
        ));
        v.push((
            self.cross_id(),
            format!(
                "broadcast to {} clients split over 2 server processes on a Redis backplane, publisher on one \
                 (server CPU: both servers and redis-server)",
                self.bcast_clients
            ),
            "deliveries/s",
            true,
        ));
        for n in &self.mem_steps {
            v.push((
                format!("mem_{}k", n / 1000),
                format!("memory: server RSS growth per idle connection, {} connections", fmt_count(*n as f64)),
                "bytes/conn",
                false,
            ));
        }
        v
    }
}

pub fn fmt_count(x: f64) -> String {
    let n = x.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

struct Args {
    quick: bool,
    rounds: Option<usize>,
    root: PathBuf,
    out: PathBuf,
    only: Option<Vec<String>>,
    workloads: Option<Vec<String>>,
    server_cpu: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        rounds: None,
        root: PathBuf::from("."),
        out: PathBuf::new(),
        only: None,
        workloads: None,
        server_cpu: if num_cpus() >= 2 { Some(0) } else { None },
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--rounds" => {
                let n: usize = val()?.parse().map_err(|_| "bad --rounds")?;
                a.rounds = Some(n.clamp(1, 100));
            }
            "--root" => a.root = PathBuf::from(val()?),
            "--out" => a.out = PathBuf::from(val()?),
            "--only" => a.only = Some(val()?.split(',').map(str::to_string).collect()),
            "--workloads" => a.workloads = Some(val()?.split(',').map(str::to_string).collect()),
            "--server-cpu" => {
                let v = val()?;
                a.server_cpu = if v == "none" { None } else { Some(v.parse().map_err(|_| "bad --server-cpu")?) };
            }
            "-h" | "--help" => {
                println!("usage: wsbench [--quick] [--rounds N] [--root DIR] [--out DIR] [--only a,b] [--workloads prefix,..] [--server-cpu N|none]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.out.as_os_str().is_empty() {
        a.out = a.root.join("build/bench");
    }
    Ok(a)
}

/// CPUs online (not just the ones this process may run on: run.sh pins us).
pub fn num_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        1
    }
}

/// Raises the soft fd limit to the hard one; children inherit it.
fn raise_fd_limit() -> u64 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: r is a valid out-pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
    }
    r.rlim_cur
}

struct Ctx {
    plan: Plan,
    out: PathBuf,
    server_cpu: Option<usize>,
    fd_limit: u64,
    wanted: Option<Vec<String>>,
    /// Re-measurements of noisy windows left for this run.
    retries_left: std::cell::Cell<u32>,
    /// The round being run, from 1.
    round: std::cell::Cell<usize>,
}

impl Ctx {
    /// Between workloads: lets the server finish closing connections.
    fn pause(&self) -> Duration {
        Duration::from_millis(if self.plan.quick { 100 } else { 300 })
    }

    fn wants(&self, id: &str) -> bool {
        self.wanted.as_ref().is_none_or(|w| w.iter().any(|p| id.starts_with(p.as_str())))
    }
}

/// Above this much CPU (100 = one core) used by everything else during a
/// window, its figures are noisy: measure again, within a budget.
const NOISY_PCT: f64 = 25.0;

/// Runs one workload, again (full mode, up to 3 times, within the run's
/// retry budget) while other processes disturbed it; keeps the quietest
/// result and marks it when it is still noisy.
async fn measured(
    ctx: &Ctx,
    server: &str,
    id: &str,
    mut f: impl AsyncFnMut() -> Result<Measure, String>,
) -> Result<Measure, String> {
    let tries = if ctx.plan.quick { 1 } else { 3 };
    let mut best: Option<Result<Measure, String>> = None;
    for attempt in 1..=tries {
        let r = f().await;
        let other = r.as_ref().ok().and_then(|m| m.other_cpu_pct);
        let better = match (&best, &r) {
            (None, _) | (Some(Err(_)), Ok(_)) => true,
            (Some(Ok(b)), Ok(m)) => m.other_cpu_pct < b.other_cpu_pct,
            _ => false,
        };
        if better {
            best = Some(r);
        }
        match other {
            Some(o) if o > NOISY_PCT && attempt < tries && ctx.retries_left.get() > 0 => {
                ctx.retries_left.set(ctx.retries_left.get() - 1);
                eprintln!("[wsbench] {server:<18} {id:<16} other processes used {o:.0}% CPU: measuring again");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            _ => break,
        }
    }
    let mut r = best.expect("at least one attempt");
    if let Ok(m) = &mut r {
        if let Some(o) = m.other_cpu_pct.filter(|o| *o > NOISY_PCT) {
            let was = std::mem::take(&mut m.note);
            m.note = format!("noisy: other processes used {o:.0}% CPU");
            if !was.is_empty() {
                m.note.push_str(&format!("; {was}"));
            }
        }
    }
    r
}

fn progress(ctx: &Ctx, server: &str, id: &str, r: &Result<Measure, String>, unit: &str) {
    let round = if ctx.plan.rounds > 1 { format!("r{}/{} ", ctx.round.get(), ctx.plan.rounds) } else { String::new() };
    match r {
        Ok(m) => eprintln!("[wsbench] {round}{server:<18} {id:<16} {:>12} {unit}", fmt_count(m.value)),
        Err(e) => eprintln!("[wsbench] {round}{server:<18} {id:<16} skipped: {e}"),
    }
}

/// Every result of each (server, workload), one per round it ran in, in the
/// order the pairs were first measured (server by server).
#[derive(Default)]
struct Collected(Vec<(String, String, Rounds)>);

impl Collected {
    fn add(&mut self, server: &str, id: &str, r: Result<Measure, String>) {
        match self.0.iter_mut().find(|e| e.0 == server && e.1 == id) {
            Some(e) => e.2.push(r),
            None => self.0.push((server.to_string(), id.to_string(), vec![r])),
        }
    }

    fn rows(self) -> Vec<Row> {
        self.0.into_iter().map(|(server, id, rounds)| Row::from_rounds(server, id, rounds)).collect()
    }
}

/// One server's part of a round: where its results and process exits go.
struct Sink<'a> {
    ctx: &'a Ctx,
    name: &'static str,
    col: &'a mut Collected,
    exits: &'a mut Vec<String>,
}

impl Sink<'_> {
    fn add(&mut self, id: &str, unit: &str, r: Result<Measure, String>) {
        progress(self.ctx, self.name, id, &r, unit);
        self.col.add(self.name, id, r);
    }

    fn exit(&mut self, phase: &str, how: String) {
        let round = if self.ctx.plan.rounds > 1 { format!("round {} ", self.ctx.round.get()) } else { String::new() };
        self.exits.push(format!("{round}{phase}: {how}"));
    }

    /// The server's log file for one phase (later rounds: one file each).
    fn log(&self, phase: &str) -> PathBuf {
        let round = self.ctx.round.get();
        let suffix = if round > 1 { format!("-r{round}") } else { String::new() };
        self.ctx.out.join("logs").join(format!("{}-{phase}{suffix}.log", self.name))
    }
}

/// Echo mode, one server process: the echo rows and, when `connrate`, the
/// connection rate after them.
async fn echo_phase(spec: &Spec, out: &mut Sink<'_>, connrate: bool) {
    let ctx = out.ctx;
    let plan = &ctx.plan;
    let (name, raw) = (spec.name, spec.echo.raw);
    let cr_id = format!("connrate_{}", plan.connrate_conc);
    let echo_ids: Vec<&str> = plan.echo.iter().map(|e| e.0).filter(|id| ctx.wants(id)).collect();
    let cr = connrate && ctx.wants(&cr_id);
    if echo_ids.is_empty() && !cr {
        return;
    }
    let mut srv = match Server::start(&spec.echo, ctx.server_cpu, out.log("echo")).await {
        Ok(srv) => srv,
        Err(e) => {
            for id in echo_ids.iter().copied().chain(cr.then_some(cr_id.as_str())) {
                out.add(id, "", Err(format!("server did not start: {e}")));
            }
            return;
        }
    };
    let (addr, pid) = (srv.addr, srv.pid);
    for (id, _, conns, size) in plan.echo.iter().filter(|e| ctx.wants(e.0)) {
        let r = if srv.alive() {
            measured(ctx, name, id, async || workloads::echo(addr, raw, pid, *conns, *size, &plan.echo_t).await).await
        } else {
            Err(format!("server died: {}", srv.log_tail()))
        };
        out.add(id, "msg/s", r);
        tokio::time::sleep(ctx.pause()).await;
    }
    if cr {
        let r = if srv.alive() {
            measured(ctx, name, &cr_id, async || {
                workloads::connrate(addr, raw, pid, plan.connrate_conc, &plan.connrate_t).await
            })
            .await
        } else {
            Err(format!("server died: {}", srv.log_tail()))
        };
        out.add(&cr_id, "handshakes/s", r);
    }
    out.exit("echo", srv.stop().await);
}

/// Memory, on a fresh server process: idle connections in growing steps.
async fn memory_phase(spec: &Spec, out: &mut Sink<'_>) {
    let ctx = out.ctx;
    let raw = spec.echo.raw;
    let mem_ids: Vec<(usize, String)> =
        ctx.plan.mem_steps.iter().map(|n| (*n, format!("mem_{}k", n / 1000))).filter(|(_, id)| ctx.wants(id)).collect();
    if mem_ids.is_empty() {
        return;
    }
    let mut srv = match Server::start(&spec.echo, ctx.server_cpu, out.log("memory")).await {
        Ok(srv) => srv,
        Err(e) => {
            for (_, id) in &mem_ids {
                out.add(id, "", Err(format!("server did not start: {e}")));
            }
            return;
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = rss_kib(srv.pid).unwrap_or(0);
    let mut set = IdleSet { streams: Vec::new() };
    let mut failed: Option<String> = None;
    for (n, id) in &mem_ids {
        let r = if let Some(f) = &failed {
            Err(format!("not tried: a smaller step failed ({f})"))
        } else if (*n as u64) + 4096 > ctx.fd_limit {
            Err(format!("fd limit (ulimit -n) {} is below {n} connections", ctx.fd_limit))
        } else if !srv.alive() {
            Err(format!("server died: {}", srv.log_tail()))
        } else {
            let limit = Duration::from_secs(if *n > 20_000 { 120 } else { 60 });
            workloads::memory_step(srv.addr, raw, srv.pid, &mut set, *n, base, limit).await
        };
        if let Err(e) = &r {
            failed.get_or_insert(e.chars().take(80).collect());
        }
        out.add(id, "bytes/conn", r);
    }
    // Clients leave first, so no server has to close 10k+ connections
    // itself within stop()'s grace time.
    drop(set);
    tokio::time::sleep(Duration::from_millis(500)).await;
    out.exit("memory", srv.stop().await);
}

/// Broadcast mode, on its own server process.
async fn broadcast_phase(spec: &Spec, out: &mut Sink<'_>) {
    let ctx = out.ctx;
    let plan = &ctx.plan;
    let bc_id = format!("broadcast_{}c", plan.bcast_clients);
    if !ctx.wants(&bc_id) {
        return;
    }
    let launch = match &spec.broadcast {
        Ok(launch) => launch,
        Err(why) => return out.add(&bc_id, "", Err(why.to_string())),
    };
    let r = match Server::start(launch, ctx.server_cpu, out.log("broadcast")).await {
        Err(e) => Err(format!("server did not start: {e}")),
        Ok(srv) => {
            let (addr, pid, raw) = (srv.addr, srv.pid, launch.raw);
            let r = measured(ctx, spec.name, &bc_id, async || {
                workloads::broadcast(&[addr], raw, &[pid], plan.bcast_clients, 8, &plan.bcast_t).await
            })
            .await;
            out.exit("broadcast", srv.stop().await);
            r
        }
    };
    out.add(&bc_id, "deliveries/s", r);
}

/// Broadcast across two server processes on one Redis broker (all three
/// pinned where the single server runs), receivers split over both, the
/// publisher a client of the first. Only servers with a cross mode have
/// this row.
async fn cross_phase(spec: &Spec, out: &mut Sink<'_>) {
    let ctx = out.ctx;
    let plan = &ctx.plan;
    let id = plan.cross_id();
    let Ok(launch) = &spec.cross else { return };
    if !ctx.wants(&id) {
        return;
    }
    let dir = ctx.out.join("logs").join(format!("{}-redis", spec.name));
    let _ = std::fs::create_dir_all(&dir);
    let broker = match broker::Broker::start(ctx.server_cpu, &dir) {
        Ok(b) => b,
        Err(e) => return out.add(&id, "", Err(e)),
    };
    let launch = procs::Launch {
        argv: launch.argv.iter().map(|a| a.replace("{backplane}", &broker.url())).collect(),
        raw: launch.raw,
    };
    let mut servers = Vec::new();
    for i in 0..2 {
        match Server::start(&launch, ctx.server_cpu, out.log(&format!("cross{i}"))).await {
            Ok(s) => servers.push(s),
            Err(e) => return out.add(&id, "", Err(format!("server {i} did not start: {e}"))),
        }
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let pids: Vec<u32> = servers.iter().map(|s| s.pid).chain([broker.pid]).collect();
    let r = measured(ctx, spec.name, &id, async || {
        workloads::broadcast(&addrs, launch.raw, &pids, plan.bcast_clients, 8, &plan.bcast_t).await
    })
    .await;
    for (i, s) in servers.into_iter().enumerate() {
        out.exit(&format!("cross{i}"), s.stop().await);
    }
    drop(broker);
    out.add(&id, "deliveries/s", r);
}

/// Runs the plan: `rounds` rounds, each giving every server its turn (so
/// that a drift of the machine hits every server alike). The echo and
/// broadcast rows run in every round; connection rate and memory only in
/// the first. Returns the results and how each server's processes ended.
async fn run_all(specs: &[Spec], ctx: &Ctx) -> (Collected, Vec<Vec<String>>) {
    let mut col = Collected::default();
    let mut exits: Vec<Vec<String>> = vec![Vec::new(); specs.len()];
    for round in 1..=ctx.plan.rounds {
        ctx.round.set(round);
        if ctx.plan.rounds > 1 {
            eprintln!("[wsbench] round {round} of {}", ctx.plan.rounds);
        }
        let first = round == 1;
        for (spec, exits) in specs.iter().zip(exits.iter_mut()) {
            if let Some(reason) = &spec.skip {
                if first {
                    let cross = ctx.plan.cross_id();
                    let rows = ctx.plan.workloads();
                    let rows = rows.iter().filter(|w| ctx.wants(&w.0) && (w.0 != cross || spec.cross.is_ok()));
                    for (id, ..) in rows {
                        col.add(spec.name, id, Err(reason.clone()));
                    }
                    eprintln!("[wsbench] {:<18} skipped: {reason}", spec.name);
                }
                continue;
            }
            let mut out = Sink { ctx, name: spec.name, col: &mut col, exits };
            echo_phase(spec, &mut out, first).await;
            if first {
                memory_phase(spec, &mut out).await;
            }
            broadcast_phase(spec, &mut out).await;
            cross_phase(spec, &mut out).await;
            tokio::time::sleep(ctx.pause()).await;
        }
    }
    (col, exits)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wsbench: {e}");
            std::process::exit(2);
        }
    };
    let fd_limit = raise_fd_limit();
    let root = std::fs::canonicalize(&args.root).unwrap_or(args.root.clone());
    let out = if args.out.is_absolute() { args.out.clone() } else { std::env::current_dir().unwrap().join(&args.out) };
    std::fs::create_dir_all(out.join("logs")).expect("cannot create the output directory");
    let exe = std::env::current_exe().expect("current_exe");
    let rust_bins = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
    let specs = servers::all(&servers::Paths { root: &root, rust_bins: &rust_bins, out: &out });
    let specs: Vec<Spec> = match &args.only {
        Some(only) => specs.into_iter().filter(|s| only.iter().any(|o| o == s.name)).collect(),
        None => specs,
    };
    let ctx = Ctx {
        plan: Plan::new(args.quick, args.rounds),
        out: out.clone(),
        server_cpu: args.server_cpu,
        fd_limit,
        wanted: args.workloads.clone(),
        retries_left: std::cell::Cell::new(15),
        round: std::cell::Cell::new(1),
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
    let local = tokio::task::LocalSet::new();
    let (col, exits) = local.block_on(&rt, run_all(&specs, &ctx));
    let rows = col.rows();
    let exits: Vec<(&'static str, Vec<String>)> = specs.iter().map(|s| s.name).zip(exits).collect();
    let rep = report::Report {
        plan: &ctx.plan,
        specs: &specs,
        rows: &rows,
        exits: &exits,
        root: &root,
        elapsed: started.elapsed(),
        server_cpu: ctx.server_cpu,
    };
    print!("{}", rep.table());
    let json_path = out.join("results.json");
    match std::fs::write(&json_path, rep.json()) {
        Ok(()) => eprintln!("[wsbench] wrote {}", json_path.display()),
        Err(e) => eprintln!("[wsbench] cannot write {}: {e}", json_path.display()),
    }
    // Figures are never asserted, but a run that measured nothing at all
    // means the harness itself is broken.
    if !rows.iter().any(|r| matches!(r.status, report::Status::Ok(_))) {
        eprintln!("[wsbench] no workload could be measured on any server");
        std::process::exit(1);
    }
}
