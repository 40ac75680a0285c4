//! wsbench: every workload against every server, one server at a time
//! (bench/README.md; normally started by bench/run.sh).

mod broker;
mod client;
mod deflate;
mod epoll_bcast;
mod epoll_echo;
mod hotloop;
mod instructions;
mod procs;
mod report;
mod servers;
mod sock;
mod targets;
mod tls;
mod workloads;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use client::Deflate;
use procs::{rss_kib, Launch, Server};
use report::{Rounds, Row};
use servers::{Family, Spec};
use workloads::{IdleSet, Measure, Timing};

/// What one run measures; `--quick` shrinks durations and counts.
pub struct Plan {
    pub quick: bool,
    /// Rounds of the echo and broadcast rows (interleaved; medians reported).
    pub rounds: usize,
    pub echo_t: Timing,
    pub echo: Vec<(&'static str, String, usize, usize)>,
    pub connrate_conc: usize,
    pub connrate_t: Timing,
    pub bcast_clients: usize,
    pub bcast_t: Timing,
    pub mem_steps: Vec<usize>,
    /// The deflate rows: echo (connections, bytes), broadcast (receivers,
    /// bytes), idle connections.
    pub deflate_echo: (usize, usize),
    pub deflate_bcast: (usize, usize),
    pub deflate_mem: usize,
    pub deflate_t: Timing,
    pub instr: instructions::InstrPlan,
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
            deflate_echo: (100, 16384),
            deflate_bcast: (1000, 16384),
            deflate_mem: 10_000,
            deflate_t: t(1000, 4000),
            instr: instructions::InstrPlan { clients: 10, size: 16, n1: 200, n2: 1200 },
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
            deflate_bcast: (200, 16384),
            deflate_mem: 1000,
            deflate_t: t(100, 400),
            instr: instructions::InstrPlan { n1: 50, n2: 300, ..full.instr },
            ..full
        }
    }

    /// The deflate echo row's id, deflate off or on.
    pub fn deflate_echo_id(&self, on: bool) -> String {
        let (conns, size) = self.deflate_echo;
        format!("deflate_echo_{}k_{conns}c_{}", size / 1024, if on { "on" } else { "off" })
    }

    pub fn deflate_bcast_id(&self, on: bool) -> String {
        format!("deflate_bcast_{}c_{}", self.deflate_bcast.0, if on { "on" } else { "off" })
    }

    pub fn deflate_mem_id(&self) -> String {
        format!("deflate_mem_{}k", self.deflate_mem / 1000)
    }

    /// The instruction-count row's id.
    pub fn instr_id(&self) -> String {
        format!("instructions_{}b_{}c", self.instr.size, self.instr.clients)
    }

    /// The cross-server broadcast row's id.
    pub fn cross_id(&self) -> String {
        format!("broadcast_{}c_2srv", self.bcast_clients)
    }

    /// (id, label, unit, higher is better) of every row, in table order.
    pub fn workloads(&self) -> Vec<(String, String, &'static str, bool)> {
        let n = |x: usize| fmt_count(x as f64);
        let (c, b) = (self.connrate_conc, self.bcast_clients);
        let ((conns, esize), (clients, bsize)) = (self.deflate_echo, self.deflate_bcast);
        let how = |on| if on { "deflate on" } else { "deflate off (offered, declined)" };
        let mut v: Vec<(String, String, &'static str, bool)> = Vec::new();
        for (id, label, _, _) in &self.echo {
            v.push((id.to_string(), format!("{label}, 1 message in flight each"), "msg/s", true));
        }
        let connrate = format!("connection rate: connect + handshake + close, {c} concurrent");
        v.push((format!("connrate_{c}"), connrate, "handshakes/s", true));
        let bcast = format!("broadcast to {b} clients, 1 publisher, window 8 (deliveries/s across clients)");
        v.push((format!("broadcast_{b}c"), bcast, "deliveries/s", true));
        let cross = format!(
            "broadcast to {b} clients split over 2 server processes on a Redis backplane, publisher on one \
             (server CPU: both servers and redis-server)"
        );
        v.push((self.cross_id(), cross, "deliveries/s", true));
        for k in &self.mem_steps {
            let label = format!("memory: server RSS growth per idle connection, {} connections", n(*k));
            v.push((format!("mem_{}k", k / 1000), label, "bytes/conn", false));
        }
        for on in [false, true] {
            let label = format!("echo {} KiB JSON-like text, {conns} connections, {}", esize / 1024, how(on));
            v.push((self.deflate_echo_id(on), label, "msg/s", true));
        }
        for on in [false, true] {
            let label = format!(
                "broadcast {} KiB JSON-like text to {} clients, window 8, {}",
                bsize / 1024,
                n(clients),
                how(on)
            );
            v.push((self.deflate_bcast_id(on), label, "deliveries/s", true));
        }
        v.extend(tls::workloads(self)); // the wss:// rows
        let label = format!("memory per idle connection, deflate agreed, {} connections", n(self.deflate_mem));
        v.push((self.deflate_mem_id(), label, "bytes/conn", false));
        let instructions::InstrPlan { clients, size, n1, n2 } = self.instr;
        let d = n2 - n1;
        let label = format!(
            "user-space instructions per echoed {size} B message (callgrind: (Ir({n2}) - Ir({n1})) / ({clients} x {d}), \
             {clients} clients x {n1} and x {n2} echoes, one in flight each)"
        );
        v.push((self.instr_id(), label, "instr/msg", false));
        v
    }

    /// Whether `spec` has row `id` (deflate rows: servers with a deflate mode;
    /// raw-tcp none in quick mode, never deflate_mem; cross: a cross mode).
    pub fn has(&self, spec: &Spec, id: &str) -> bool {
        if id == self.cross_id() {
            return spec.cross.is_some();
        }
        if tls::lacks(self, spec, id) {
            return false;
        }
        let raw = spec.family == Family::Ceiling;
        !id.starts_with("deflate_")
            || (spec.deflate.is_some() && !(raw && (self.quick || id.starts_with("deflate_mem"))))
    }
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
    /// Only the rows whose id starts with one of these.
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

fn parse_args() -> Args {
    let mut a = <Args as clap::Parser>::parse();
    a.rounds = a.rounds.map(|n| n.clamp(1, 100));
    if a.instructions {
        a.workloads.get_or_insert_with(Vec::new).push("instructions".into());
        a.only.get_or_insert_with(|| INSTR_SERVERS.iter().map(|s| s.to_string()).collect());
        a.rounds.get_or_insert(1);
    }
    a
}

/// The servers of `--instructions` without `--only`.
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

    /// Whether row `id` is to be run: every row unless `--workloads`
    /// names prefixes; the instruction-count row only when named.
    fn wants(&self, id: &str) -> bool {
        match &self.wanted {
            None => !id.starts_with("instructions"),
            Some(w) => w.iter().any(|p| id.starts_with(p.as_str())),
        }
    }
}

/// Above this much CPU (100 = one core) used by everything else during a
/// window, its figures are noisy: measure again, within a budget.
const NOISY_PCT: f64 = 25.0;

/// Runs one workload, again (full mode, 3 times at most, within the retry
/// budget) while others used the CPU; keeps the quietest result.
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

/// Every result of each (server, workload), one per round, in first-measured order.
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

/// An echo or broadcast row: id, connections (receivers), message size,
/// and what the client offers and expects of deflate.
type Load = (String, usize, usize, Deflate);

/// What one server process runs, in order: memory steps (id, connections,
/// deflate), echo rows, the connection rate, broadcast rows.
#[derive(Default)]
struct Runs {
    mem: Vec<(String, usize, Deflate)>,
    echo: Vec<Load>,
    connrate: bool,
    bcast: Vec<Load>,
}

/// One server process started with `launch` (or why there is none), and
/// the rows of `runs` measured on it.
async fn phase(out: &mut Sink<'_>, phase: &str, launch: Result<&Launch, &String>, runs: Runs) {
    let ctx = out.ctx;
    let plan = &ctx.plan;
    let cr_id = format!("connrate_{}", plan.connrate_conc);
    let mem: Vec<_> = runs.mem.iter().filter(|m| ctx.wants(&m.0)).collect();
    let echo: Vec<&Load> = runs.echo.iter().filter(|r| ctx.wants(&r.0)).collect();
    let bcast: Vec<&Load> = runs.bcast.iter().filter(|r| ctx.wants(&r.0)).collect();
    let cr = runs.connrate && ctx.wants(&cr_id);
    let ids: Vec<&str> = (mem.iter().map(|m| m.0.as_str()))
        .chain(echo.iter().map(|r| r.0.as_str()))
        .chain(cr.then_some(cr_id.as_str()))
        .chain(bcast.iter().map(|r| r.0.as_str()))
        .collect();
    if ids.is_empty() {
        return;
    }
    let started = match launch {
        Ok(launch) => Server::start(launch, ctx.server_cpu, out.log(phase))
            .await
            .map(|s| (s, launch.raw))
            .map_err(|e| format!("server did not start: {e}")),
        Err(why) => Err(why.clone()),
    };
    let (mut srv, raw) = match started {
        Ok(s) => s,
        Err(e) => return ids.iter().for_each(|id| out.add(id, "", Err(e.clone()))),
    };
    let (addr, pid, name, tls) = (srv.addr, srv.pid, out.name, srv.tls);
    let timing = |id: &str, t| if id.starts_with("deflate_") { &plan.deflate_t } else { t };
    if !mem.is_empty() {
        // Idle connections in growing steps, against the fresh process's RSS.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let base = rss_kib(pid).unwrap_or(0);
        let mut set = IdleSet { streams: Vec::new() };
        let mut failed: Option<String> = None;
        for (id, n, dfl) in mem {
            let r = if let Some(f) = &failed {
                Err(format!("not tried: a smaller step failed ({f})"))
            } else if (*n as u64) + 4096 > ctx.fd_limit {
                Err(format!("fd limit (ulimit -n) {} is below {n} connections", ctx.fd_limit))
            } else {
                let limit = Duration::from_secs(if *n > 20_000 { 120 } else { 60 });
                if_alive(&mut srv, workloads::memory_step(addr, (raw, *dfl), tls, pid, &mut set, *n, base, limit)).await
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
    }
    for (id, conns, size, dfl) in echo {
        let t = timing(id, &plan.echo_t);
        let f = measured(ctx, name, id, async || workloads::echo(addr, (raw, *dfl), tls, pid, *conns, *size, t).await);
        out.add(id, "msg/s", if_alive(&mut srv, f).await);
        tokio::time::sleep(ctx.pause()).await;
    }
    if cr {
        let (c, t) = (plan.connrate_conc, &plan.connrate_t);
        let f = measured(ctx, name, &cr_id, async || workloads::connrate(addr, raw, pid, c, t).await);
        out.add(&cr_id, "handshakes/s", if_alive(&mut srv, f).await);
    }
    for (id, clients, size, dfl) in bcast {
        let t = timing(id, &plan.bcast_t);
        let f = measured(ctx, name, id, async || {
            workloads::broadcast(&[addr], (raw, *dfl), &[pid], *clients, *size, 8, t).await
        });
        out.add(id, "deliveries/s", if_alive(&mut srv, f).await);
        tokio::time::sleep(ctx.pause()).await;
    }
    out.exit(phase, srv.stop().await);
}

/// `f`, unless the server has died meanwhile.
async fn if_alive(srv: &mut Server, f: impl Future<Output = Result<Measure, String>>) -> Result<Measure, String> {
    if srv.alive() {
        f.await
    } else {
        Err(format!("server died: {}", srv.log_tail()))
    }
}

/// Broadcast across two server processes on one Redis broker, receivers
/// split over both, the publisher on the first.
async fn cross_phase(spec: &Spec, out: &mut Sink<'_>) {
    let ctx = out.ctx;
    let plan = &ctx.plan;
    let id = plan.cross_id();
    let Some(cross) = &spec.cross else { return };
    if !ctx.wants(&id) {
        return;
    }
    let launch = match cross {
        Ok(l) => l,
        Err(why) => return out.add(&id, "", Err(why.clone())),
    };
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
        let mode = (launch.raw, Deflate::NotOffered);
        workloads::broadcast(&addrs, mode, &pids, plan.bcast_clients, 16, 8, &plan.bcast_t).await
    })
    .await;
    for (i, s) in servers.into_iter().enumerate() {
        out.exit(&format!("cross{i}"), s.stop().await);
    }
    drop(broker);
    out.add(&id, "deliveries/s", r);
}

/// The instruction-count row: the server's echo mode twice under callgrind
/// (src/instructions.rs).
async fn instr_phase(spec: &Spec, out: &mut Sink<'_>) {
    let ctx = out.ctx;
    let id = ctx.plan.instr_id();
    if !ctx.wants(&id) || !ctx.plan.has(spec, &id) {
        return;
    }
    let (r, exits) =
        instructions::measure(&spec.echo, ctx.server_cpu, &ctx.plan.instr, &ctx.out.join("logs"), spec.name).await;
    for e in exits {
        out.exit("instructions", e);
    }
    out.add(&id, "instr/msg", r);
}

/// Runs the plan: `rounds` rounds of every server in turn (a drift hits all
/// alike); connection rate, memory and instructions in the first only.
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
                    for (id, ..) in ctx.plan.workloads().iter().filter(|w| ctx.wants(&w.0) && ctx.plan.has(spec, &w.0))
                    {
                        col.add(spec.name, id, Err(reason.clone()));
                    }
                    eprintln!("[wsbench] {:<18} skipped: {reason}", spec.name);
                }
                continue;
            }
            let mut out = Sink { ctx, name: spec.name, col: &mut col, exits };
            let plan = &ctx.plan;
            let ((conns, esize), (clients, bsize)) = (plan.deflate_echo, plan.deflate_bcast);
            let deflate_rows = plan.has(spec, &plan.deflate_echo_id(false));
            // The plain modes: the classic rows, then the deflate-off rows
            // (offered, declined) on the same processes.
            let mut echo: Vec<Load> =
                plan.echo.iter().map(|e| (e.0.to_string(), e.2, e.3, Deflate::NotOffered)).collect();
            let mut bcast =
                vec![(format!("broadcast_{}c", plan.bcast_clients), plan.bcast_clients, 16, Deflate::NotOffered)];
            if deflate_rows {
                echo.push((plan.deflate_echo_id(false), conns, esize, Deflate::Off));
                bcast.push((plan.deflate_bcast_id(false), clients, bsize, Deflate::Off));
            }
            phase(&mut out, "echo", Ok(&spec.echo), Runs { echo, connrate: first, ..Runs::default() }).await;
            if first {
                let mem =
                    plan.mem_steps.iter().map(|n| (format!("mem_{}k", n / 1000), *n, Deflate::NotOffered)).collect();
                phase(&mut out, "memory", Ok(&spec.echo), Runs { mem, ..Runs::default() }).await;
            }
            phase(&mut out, "broadcast", spec.broadcast.as_ref(), Runs { bcast, ..Runs::default() }).await;
            // Deflate on: the server started in its deflate mode; idle
            // connections first, on the fresh process (first round only).
            if let Some(d) = spec.deflate.as_ref().filter(|_| deflate_rows) {
                let mem_id = plan.deflate_mem_id();
                let mem = if first && plan.has(spec, &mem_id) {
                    vec![(mem_id, plan.deflate_mem, Deflate::On)]
                } else {
                    vec![]
                };
                let echo = vec![(plan.deflate_echo_id(true), conns, esize, Deflate::On)];
                phase(&mut out, "deflate-echo", d.echo.as_ref(), Runs { mem, echo, ..Runs::default() }).await;
                let bcast = vec![(plan.deflate_bcast_id(true), clients, bsize, Deflate::On)];
                phase(&mut out, "deflate-broadcast", d.broadcast.as_ref(), Runs { bcast, ..Runs::default() }).await;
            }
            cross_phase(spec, &mut out).await;
            tls::phase(spec, &mut out, first).await; // the wss:// rows
            if first {
                instr_phase(spec, &mut out).await;
            }
            tokio::time::sleep(ctx.pause()).await;
        }
    }
    (col, exits)
}

fn main() {
    let args = parse_args();
    let server_cpu = args.server_cpu.map_or((num_cpus() >= 2).then_some(0), |c| c.0);
    // The soft fd limit raised to the hard one; children inherit it.
    let fd_limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let root = std::fs::canonicalize(&args.root).unwrap_or(args.root.clone());
    let out = args.out.clone().unwrap_or(args.root.join("build/bench"));
    let out = if out.is_absolute() { out } else { std::env::current_dir().unwrap().join(out) };
    std::fs::create_dir_all(out.join("logs")).expect("cannot create the output directory");
    tls::init(&out.join("tls")); // the wss:// rows' certificates
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
        server_cpu,
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
    if !rows.iter().any(|r| r.status.is_ok()) {
        eprintln!("[wsbench] no workload could be measured on any server");
        std::process::exit(1);
    }
}
