//! wsbench: runs every workload against every server, one server at a time,
//! and reports absolute figures plus the ratio to wsserver (C API).
//!
//! Usage: wsbench [--quick] [--root DIR] [--out DIR] [--only a,b] [--workloads a,b]
//!                [--server-cpu N]
//!
//! Normally started by bench/run.sh, which builds the peers, raises the fd
//! limit and pins this process to CPU 1; servers are started pinned to CPU 0.

mod client;
mod epoll_bcast;
mod epoll_echo;
mod procs;
mod report;
mod servers;
mod sock;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procs::{rss_kib, Server};
use report::{Row, Status};
use servers::Spec;
use workloads::{IdleSet, Measure, Timing};

/// What one run measures; `--quick` shrinks durations and counts.
pub struct Plan {
    pub quick: bool,
    pub echo_t: Timing,
    pub echo: Vec<(&'static str, String, usize, usize)>,
    pub connrate_conc: usize,
    pub connrate_t: Timing,
    pub bcast_clients: usize,
    pub bcast_t: Timing,
    pub mem_steps: Vec<usize>,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        let t = |w: u64, m: u64| Timing { warmup: Duration::from_millis(w), measure: Duration::from_millis(m) };
        if quick {
            Plan {
                quick,
                echo_t: t(200, 800),
                echo: vec![
                    ("echo_16b_100c", "echo 16 B, 100 connections".into(), 100, 16),
                    ("echo_16k_100c", "echo 16 KiB, 100 connections".into(), 100, 16384),
                    ("echo_16b_1000c", "echo 16 B, 1,000 connections".into(), 1000, 16),
                ],
                connrate_conc: 50,
                connrate_t: t(200, 800),
                bcast_clients: 200,
                bcast_t: t(200, 800),
                mem_steps: vec![1000],
            }
        } else {
            Plan {
                quick,
                echo_t: t(1000, 5000),
                echo: vec![
                    ("echo_16b_100c", "echo 16 B, 100 connections".into(), 100, 16),
                    ("echo_16k_100c", "echo 16 KiB, 100 connections".into(), 100, 16384),
                    ("echo_16b_1000c", "echo 16 B, 1,000 connections".into(), 1000, 16),
                ],
                connrate_conc: 50,
                connrate_t: t(500, 4000),
                bcast_clients: 1000,
                bcast_t: t(1000, 5000),
                mem_steps: vec![10_000, 100_000],
            }
        }
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
        if i > 0 && (s.len() - i) % 3 == 0 {
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
    root: PathBuf,
    out: PathBuf,
    only: Option<Vec<String>>,
    workloads: Option<Vec<String>>,
    server_cpu: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        quick: false,
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
            "--root" => a.root = PathBuf::from(val()?),
            "--out" => a.out = PathBuf::from(val()?),
            "--only" => a.only = Some(val()?.split(',').map(str::to_string).collect()),
            "--workloads" => a.workloads = Some(val()?.split(',').map(str::to_string).collect()),
            "--server-cpu" => {
                let v = val()?;
                a.server_cpu = if v == "none" { None } else { Some(v.parse().map_err(|_| "bad --server-cpu")?) };
            }
            "-h" | "--help" => {
                println!("usage: wsbench [--quick] [--root DIR] [--out DIR] [--only a,b] [--workloads prefix,..] [--server-cpu N|none]");
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

fn progress(server: &str, id: &str, r: &Result<Measure, String>, unit: &str) {
    match r {
        Ok(m) => eprintln!("[wsbench] {server:<18} {id:<16} {:>12} {unit}", fmt_count(m.value)),
        Err(e) => eprintln!("[wsbench] {server:<18} {id:<16} skipped: {e}"),
    }
}

fn row(server: &str, id: &str, r: Result<Measure, String>) -> Row {
    Row {
        server: server.to_string(),
        workload: id.to_string(),
        status: match r {
            Ok(m) => Status::Ok(m),
            Err(e) => Status::Skipped(e),
        },
    }
}

/// Runs every workload against one server. Returns its rows and how the
/// server processes ended.
async fn run_server(spec: &Spec, ctx: &Ctx) -> (Vec<Row>, Vec<String>) {
    let plan = &ctx.plan;
    let mut rows = Vec::new();
    let mut exits = Vec::new();
    let name = spec.name;
    if let Some(reason) = &spec.skip {
        for (id, ..) in plan.workloads() {
            if ctx.wants(&id) {
                rows.push(row(name, &id, Err(reason.clone())));
            }
        }
        eprintln!("[wsbench] {name:<18} skipped: {reason}");
        return (rows, exits);
    }
    let log = |phase: &str| ctx.out.join("logs").join(format!("{name}-{phase}.log"));
    let raw = spec.echo.raw;
    let ids = plan.workloads();
    let id_of = |prefix: &str| ids.iter().find(|w| w.0.starts_with(prefix)).map(|w| w.0.clone()).unwrap();

    // Phase 1: echo mode, throughput and connection rate.
    let echo_ids: Vec<String> = plan.echo.iter().map(|e| e.0.to_string()).collect();
    let cr_id = id_of("connrate_");
    if echo_ids.iter().chain([&cr_id]).any(|id| ctx.wants(id)) {
        match Server::start(&spec.echo, ctx.server_cpu, log("echo")).await {
            Err(e) => {
                for id in echo_ids.iter().chain([&cr_id]) {
                    if ctx.wants(id) {
                        rows.push(row(name, id, Err(format!("server did not start: {e}"))));
                    }
                }
            }
            Ok(mut srv) => {
                for (id, _, conns, size) in &plan.echo {
                    if !ctx.wants(id) {
                        continue;
                    }
                    let (addr, pid) = (srv.addr, srv.pid);
                    let r = if srv.alive() {
                        measured(ctx, name, id, async || {
                            workloads::echo(addr, raw, pid, *conns, *size, &plan.echo_t).await
                        })
                        .await
                    } else {
                        Err(format!("server died: {}", srv.log_tail()))
                    };
                    progress(name, id, &r, "msg/s");
                    rows.push(row(name, id, r));
                    tokio::time::sleep(ctx.pause()).await;
                }
                if ctx.wants(&cr_id) {
                    let (addr, pid) = (srv.addr, srv.pid);
                    let r = if srv.alive() {
                        measured(ctx, name, &cr_id, async || {
                            workloads::connrate(addr, raw, pid, plan.connrate_conc, &plan.connrate_t).await
                        })
                        .await
                    } else {
                        Err(format!("server died: {}", srv.log_tail()))
                    };
                    progress(name, &cr_id, &r, "handshakes/s");
                    rows.push(row(name, &cr_id, r));
                }
                exits.push(format!("echo: {}", srv.stop().await));
            }
        }
    }

    // Phase 2: memory, on a fresh server process.
    let mem_ids: Vec<(usize, String)> =
        plan.mem_steps.iter().map(|n| (*n, format!("mem_{}k", n / 1000))).filter(|(_, id)| ctx.wants(id)).collect();
    if !mem_ids.is_empty() {
        match Server::start(&spec.echo, ctx.server_cpu, log("memory")).await {
            Err(e) => {
                for (_, id) in &mem_ids {
                    rows.push(row(name, id, Err(format!("server did not start: {e}"))));
                }
            }
            Ok(mut srv) => {
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
                    progress(name, id, &r, "bytes/conn");
                    rows.push(row(name, id, r));
                }
                // Clients leave first, so no server has to close 10k+
                // connections itself within stop()'s grace time.
                drop(set);
                tokio::time::sleep(Duration::from_millis(500)).await;
                exits.push(format!("memory: {}", srv.stop().await));
            }
        }
    }

    // Phase 3: broadcast mode.
    let bc_id = id_of("broadcast_");
    if ctx.wants(&bc_id) {
        let r = match Server::start(&spec.broadcast, ctx.server_cpu, log("broadcast")).await {
            Err(e) => Err(format!("server did not start: {e}")),
            Ok(srv) => {
                let (addr, pid) = (srv.addr, srv.pid);
                let r = measured(ctx, name, &bc_id, async || {
                    workloads::broadcast(addr, raw, pid, plan.bcast_clients, 8, &plan.bcast_t).await
                })
                .await;
                exits.push(format!("broadcast: {}", srv.stop().await));
                r
            }
        };
        progress(name, &bc_id, &r, "deliveries/s");
        rows.push(row(name, &bc_id, r));
    }
    tokio::time::sleep(ctx.pause()).await;
    (rows, exits)
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
        plan: Plan::new(args.quick),
        out: out.clone(),
        server_cpu: args.server_cpu,
        fd_limit,
        wanted: args.workloads.clone(),
        retries_left: std::cell::Cell::new(15),
    };
    let started = Instant::now();
    eprintln!(
        "[wsbench] {} mode, {} servers, servers on CPU {}, fd limit {fd_limit}",
        if args.quick { "quick" } else { "full" },
        specs.len(),
        ctx.server_cpu.map(|c| c.to_string()).unwrap_or("(any)".into())
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let (rows, exits) = local.block_on(&rt, async {
        let mut rows = Vec::new();
        let mut exits = Vec::new();
        for spec in &specs {
            let (r, e) = run_server(spec, &ctx).await;
            rows.extend(r);
            exits.push((spec.name, e));
        }
        (rows, exits)
    });
    let rep = report::Report {
        quick: args.quick,
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
