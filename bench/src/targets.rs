//! Issue 4's targets (and issue 9's for the event-queue example, issue 11's
//! for the Qt binding, issue 12's for broadcast through topics, issue 13's
//! for permessage-deflate, issue 15's for instructions per message), checked against one run's figures: printed after the table and written to
//! results.json. Reported, never asserted: nothing here changes the exit
//! code.

use std::fmt::Write as _;

use crate::report::Report;
use crate::servers::Family;
use crate::workloads::Measure;

const WS: &str = "wsserver-c";
const RUST: &str = "wsserver-rust";
const POLL: &str = "wsserver-poll";
const PYWS_OURS: &str = "wsserver-python";
const PYWS: &str = "python-websockets";
const RAW: &str = "raw-tcp";
const TT: &str = "tokio-tungstenite";
const QT: &str = "wsserver-qt";
const QTWS: &str = "qtwebsockets";
/// Issue 15's peers for the instruction count.
const INSTR_PEERS: [&str; 3] = ["libwebsockets", "boost-beast", TT];
/// Issue 15's ceiling: user-space instructions per echoed 16 B message.
const INSTR_MAX: f64 = 700.0;

pub enum Verdict {
    Met,
    Missed,
    /// Cannot be judged from this run; the reason.
    NotApplicable(String),
    /// A check that explains the others rather than a target.
    Info,
}

pub struct Target {
    pub what: String,
    pub measured: String,
    pub verdict: Verdict,
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::NotApplicable(_) => "n/a",
            Verdict::Info => "info",
        }
    }

    pub fn why(&self) -> Option<&str> {
        match self {
            Verdict::NotApplicable(why) => Some(why),
            _ => None,
        }
    }
}

/// One figure of a measurement, its name, and whether more is better.
#[derive(Clone, Copy)]
struct Figure {
    name: &'static str,
    get: fn(&Measure) -> Option<f64>,
    higher: bool,
}

const THROUGHPUT: Figure = Figure { name: "throughput", get: |m| Some(m.value), higher: true };
const CPU: Figure = Figure { name: "server CPU µs/op", get: |m| m.server_cpu_us, higher: false };
const USER: Figure = Figure { name: "server user CPU µs/op", get: |m| m.server_user_us, higher: false };
const INSTR: Figure = Figure { name: "instructions/msg", get: |m| Some(m.value), higher: false };

/// A ratio, with a third decimal when two would show 1.00 for a gap.
fn x(r: f64) -> String {
    if r != 1.0 && (r - 1.0).abs() < 0.005 {
        format!("{r:.3}x")
    } else {
        format!("{r:.2}x")
    }
}

fn pct(r: f64) -> String {
    format!("{:+.1}%", (r - 1.0) * 100.0)
}

/// A short form of a skip reason.
fn short(why: &str) -> String {
    let s: String = why.chars().take(70).collect();
    if s.len() < why.len() {
        format!("{s}…")
    } else {
        s.to_string()
    }
}

struct Ctx<'a> {
    r: &'a Report<'a>,
    echo: Vec<String>,
    bcast: String,
    /// The other WebSocket libraries of the run (`Family::Peer`: not the
    /// wsserver rows, not raw-tcp).
    peers: Vec<&'static str>,
}

impl Ctx<'_> {
    fn fig(&self, server: &str, id: &str, f: Figure) -> Option<f64> {
        self.r.measure(server, id).and_then(f.get).filter(|v| *v > 0.0)
    }

    /// Whether row `id` was run at all (`--workloads`).
    fn ran(&self, id: &str) -> bool {
        self.r.rows.iter().any(|row| row.workload == id)
    }

    /// Why `server` has no figure on row `id`.
    fn why_none(&self, server: &str, id: &str) -> String {
        if !self.r.specs.iter().any(|s| s.name == server) {
            return "not in this run (--only)".into();
        }
        match self.r.row(server, id).map(|r| r.status.as_result()) {
            Some(Err(why)) => format!("skipped: {}", short(why)),
            Some(Ok(_)) => "no figure".into(),
            None => "not run".into(),
        }
    }

    /// `a`'s figure over `b`'s on row `id`, and whether the gap between
    /// them is within the larger of their spreads over the rounds.
    fn ratio(&self, a: &str, b: &str, id: &str, f: Figure) -> Option<(f64, bool)> {
        let (va, vb) = (self.fig(a, id, f)?, self.fig(b, id, f)?);
        let spread = |s: &str| self.r.row(s, id).and_then(|row| row.spread_of(f.get)).unwrap_or(0.0);
        let ratio = va / vb;
        Some((ratio, (ratio - 1.0).abs() <= spread(a).max(spread(b))))
    }

    /// Target: wsserver-c at least as good as every server of `others` on
    /// every row of `ids` for figure `f`.
    fn best_of(&self, what: String, ids: &[String], others: &[&'static str], f: Figure) -> Target {
        let ids: Vec<&String> = ids.iter().filter(|id| self.ran(id)).collect();
        if ids.is_empty() {
            return Target { what, measured: String::new(), verdict: Verdict::NotApplicable("rows not run".into()) };
        }
        let mut better: Vec<String> = Vec::new();
        let mut unmeasured: Vec<String> = Vec::new();
        let mut compared = 0;
        for id in ids.iter().copied() {
            if self.fig(WS, id, f).is_none() {
                unmeasured.push(format!("{WS} on {id} ({})", self.why_none(WS, id)));
                continue;
            }
            for o in others {
                let Some((ratio, noise)) = self.ratio(o, WS, id, f) else { continue };
                compared += 1;
                if (f.higher && ratio > 1.0) || (!f.higher && ratio < 1.0) {
                    let mut s = format!("{id} {o} {}", x(ratio));
                    if noise {
                        s.push_str(" (within the rounds' spread)");
                    }
                    better.push(s);
                }
            }
        }
        for o in others {
            let missing: Vec<&str> =
                ids.iter().filter(|id| self.fig(o, id, f).is_none()).map(|id| id.as_str()).collect();
            if missing.len() == ids.len() {
                unmeasured.push(format!("{o} ({})", self.why_none(o, ids[0])));
            } else if !missing.is_empty() {
                unmeasured.push(format!("{o} on {}", missing.join(", ")));
            }
        }
        let rel = if f.higher { "ahead" } else { "lower" };
        let mut measured = if better.is_empty() {
            format!("no server {rel} ({compared} comparisons)")
        } else {
            format!("{rel} ({} / {WS}): {}", f.name, better.join(", "))
        };
        if !unmeasured.is_empty() {
            let _ = write!(measured, "; not measured: {}", unmeasured.join(", "));
        }
        let verdict = if compared == 0 {
            Verdict::NotApplicable("nothing to compare: wsserver-c or every other server not measured".into())
        } else if better.is_empty() {
            Verdict::Met
        } else {
            Verdict::Missed
        };
        Target { what, measured, verdict }
    }

    /// Target: `a` costs at most `1 + max` times `b`'s CPU µs/op on every
    /// echo row; shown as `a`'s extra cost, with the user-space part beside it.
    fn cost_within(&self, what: String, (a, b): (&str, &str), max: f64) -> Target {
        let rows: Vec<(String, f64)> = self.echo.iter().map(|id| (id.clone(), 1.0 / (1.0 + max))).collect();
        let mut t = self.at_least(what, (b, a), &rows, CPU, |_| String::new());
        let costs: Vec<String> = self
            .echo
            .iter()
            .filter_map(|id| {
                let (total, _) = self.ratio(a, b, id, CPU)?;
                let user = self.ratio(a, b, id, USER).map(|(u, _)| format!(" (user {})", pct(u))).unwrap_or_default();
                Some(format!("{id} {}{user}", pct(total)))
            })
            .collect();
        if !costs.is_empty() {
            let rest = t.measured.split_once("; not measured").map(|(_, r)| format!("; not measured{r}"));
            t.measured = format!("{a} vs {b}: {}{}", costs.join(", "), rest.unwrap_or_default());
        }
        t
    }

    /// Target: `a`'s figure over `b`'s at least `min` on each row of `rows`.
    /// `extra` adds a remark to each row's figure.
    fn at_least(
        &self,
        what: String,
        (a, b): (&str, &str),
        rows: &[(String, f64)],
        f: Figure,
        extra: impl Fn(&str) -> String,
    ) -> Target {
        let mut parts = Vec::new();
        let mut missing = Vec::new();
        let mut missed = false;
        for (id, min) in rows {
            match self.ratio(a, b, id, f) {
                Some((ratio, _)) => {
                    missed |= ratio < *min;
                    parts.push(format!("{id} {}{}", x(ratio), extra(id)));
                }
                None if !self.ran(id) => missing.push(format!("{id} not run")),
                None => {
                    let who = if self.fig(a, id, f).is_none() { a } else { b };
                    missing.push(format!("{id}: {who} {}", self.why_none(who, id)));
                }
            }
        }
        let verdict = if parts.is_empty() {
            Verdict::NotApplicable(missing.join("; "))
        } else if missed {
            Verdict::Missed
        } else {
            Verdict::Met
        };
        let mut measured = parts.join(", ");
        if !missing.is_empty() && !parts.is_empty() {
            let _ = write!(measured, "; not measured: {}", missing.join("; "));
        }
        Target { what, measured, verdict }
    }
}

/// Every target, in the order.
pub fn evaluate(r: &Report) -> Vec<Target> {
    let echo: Vec<String> = r.plan.echo.iter().map(|e| e.0.to_string()).collect();
    let bcast = format!("broadcast_{}c", r.plan.bcast_clients);
    let peers = r.specs.iter().filter(|s| s.family == Family::Peer).map(|s| s.name).collect();
    let c = Ctx { r, echo, bcast, peers };
    let mut echo_bcast = c.echo.clone();
    echo_bcast.push(c.bcast.clone());
    let label = |id: &str| r.plan.echo.iter().find(|e| e.0 == id).map(|e| e.1.clone()).unwrap_or(id.to_string());
    let mut t = Vec::new();

    // 1. wsserver ≥ 1.0x every peer on echo and broadcast, and the same
    //    for CPU per message.
    t.push(c.best_of(
        format!("echo and broadcast: {WS} throughput >= 1.0x every peer on every row (peers: the other WebSocket libraries, not {RUST}, not {RAW})"),
        &echo_bcast,
        &c.peers,
        THROUGHPUT,
    ));
    for f in [CPU, USER] {
        t.push(c.best_of(
            format!("echo and broadcast: {WS} {} <= every peer's on every row", f.name),
            &echo_bcast,
            &c.peers,
            f,
        ));
    }

    // 2. ≥ 0.8x the raw TCP ceiling on 16 B echo.
    let small: Vec<(String, f64)> = r.plan.echo.iter().filter(|e| e.3 == 16).map(|e| (e.0.to_string(), 0.8)).collect();
    t.push(c.at_least(
        format!("16 B echo: {WS} throughput >= 0.8x {RAW} (the ceiling)"),
        (WS, RAW),
        &small,
        THROUGHPUT,
        |_| String::new(),
    ));

    // 3. Against the default tokio-tungstenite echo.
    for (id, min) in [("echo_16b_100c", 2.2), ("echo_16k_100c", 1.7), ("echo_16b_1000c", 3.8)] {
        if !c.echo.iter().any(|e| e == id) {
            continue;
        }
        let cpu = |id: &str| match c.ratio(TT, WS, id, CPU) {
            Some((ratio, _)) => format!(" (CPU µs/op {TT} / {WS}: {})", x(ratio)),
            None => String::new(),
        };
        t.push(c.at_least(
            format!("{}: {WS} throughput >= {min}x {TT}", label(id)),
            (WS, TT),
            &[(id.to_string(), min)],
            THROUGHPUT,
            cpu,
        ));
    }

    // 4. The C ABI costs under 5% against the Rust API; the event queue
    //    (the poll example) under 15% against the callbacks (issue 9).
    t.push(c.cost_within(
        format!("C ABI costs < 5%: {WS} CPU µs/op <= 1.05x {RUST}'s on each echo row"),
        (WS, RUST),
        0.05,
    ));
    t.push(c.cost_within(
        format!("event queue costs < 15% (issue 9): {POLL} CPU µs/op <= 1.15x {WS}'s on each echo row"),
        (POLL, WS),
        0.15,
    ));

    // 4a. The Python package (issue 9, asyncio on the event fd): 1.5x the
    //     echo throughput of Python websockets on every echo row.
    t.push(c.at_least(
        format!("Python package (issue 9): {PYWS_OURS} echo throughput >= 1.5x {PYWS}'s on each echo row"),
        (PYWS_OURS, PYWS),
        &c.echo.iter().map(|id| (id.clone(), 1.5)).collect::<Vec<_>>(),
        THROUGHPUT,
        |_| String::new(),
    ));

    // 4b. The Qt binding against QtWebSockets (issue 11): 3x the echo
    //     throughput on every echo row, a tenth of the memory per idle
    //     connection on every memory row (QtWebSockets' over the binding's).
    t.push(c.at_least(
        format!("Qt binding (issue 11): {QT} echo throughput >= 3x {QTWS}'s on each echo row"),
        (QT, QTWS),
        &c.echo.iter().map(|id| (id.clone(), 3.0)).collect::<Vec<_>>(),
        THROUGHPUT,
        |_| String::new(),
    ));
    let mem: Vec<(String, f64)> = r.plan.mem_steps.iter().map(|n| (format!("mem_{}k", n / 1000), 10.0)).collect();
    let kib = |id: &str| match (c.fig(QT, id, THROUGHPUT), c.fig(QTWS, id, THROUGHPUT)) {
        (Some(a), Some(b)) => format!(" ({:.2} against {:.2} KiB/conn)", a / 1024.0, b / 1024.0),
        _ => String::new(),
    };
    let mut m = c.at_least(
        format!("Qt binding (issue 11): {QT} memory per idle connection <= 1/10 of {QTWS}'s"),
        (QTWS, QT),
        &mem,
        THROUGHPUT,
        kib,
    );
    if !m.measured.is_empty() {
        m.measured = format!("{QTWS} / {QT}: {}", m.measured);
    }
    t.push(m);

    // 4c. Broadcast through topics (issue 12): wsserver-c's broadcast row
    //     publishes to a topic every receiver subscribed to
    //     (bench/peers/wsserver_publish.c); its deliveries per second at
    //     least the best peer's own broadcast.
    t.push(topics(&c));

    // 5. Idle memory.
    t.push(memory(&c, 10_000, "idle memory: <= 2 KiB RSS per connection at 10,000 connections"));
    t.push(memory(&c, 100_000, "100,000 idle connections held without error, <= 2 KiB each"));

    // 6. Lowest server CPU per message on every echo row, against the other
    //    WebSocket libraries (wsserver's own Rust API is target 4's business;
    //    raw-tcp is no WebSocket server).
    for f in [CPU, USER] {
        t.push(c.best_of(
            format!("echo: {WS} {} lowest of all WebSocket servers on every echo row", f.name),
            &c.echo,
            &c.peers,
            f,
        ));
    }

    // 6a. permessage-deflate (issue 13): with deflate on, wsserver-c at least
    //     the best peer with deflate on, on the JSON echo and broadcast rows;
    //     with deflate agreed (and wsserver's default, no context takeover),
    //     at most 2 KiB per idle connection.
    for id in [r.plan.deflate_echo_id(true), r.plan.deflate_bcast_id(true)] {
        let what = format!("deflate on (issue 13): {WS} >= the best peer with deflate on, {id}");
        t.push(vs_best_peer(&c, &id, what, None));
    }
    let n = crate::fmt_count(r.plan.deflate_mem as f64);
    t.push(memory_at(
        &c,
        &r.plan.deflate_mem_id(),
        format!("deflate on, no context takeover (issue 13): <= 2 KiB RSS per idle connection with deflate agreed, {n} connections ({WS})"),
    ));

    // 6b. Instructions per echoed 16 B message (issue 15, callgrind): at
    //     most 700 through the C ABI, and below each of its three peers.
    t.extend(instructions(&c));

    // 7. Is the load generator the bound?
    let mut g = c.at_least(
        format!("generator check: {RAW} throughput / {WS}'s per echo row"),
        (RAW, WS),
        &c.echo.iter().map(|id| (id.clone(), 0.0)).collect::<Vec<_>>(),
        THROUGHPUT,
        |id| match r.measure(RAW, id).and_then(|m| m.gen_cpu_pct) {
            Some(p) => format!(" (gen cpu {p:.0}% on raw-tcp)"),
            None => String::new(),
        },
    );
    if !matches!(g.verdict, Verdict::NotApplicable(_)) {
        g.verdict = Verdict::Info;
        g.measured.push_str(
            "; a ratio near 1 means the load generator (or the kernel's loopback path) is the bound there, \
             not wsserver, and wsserver's ratios to slower servers are underestimates",
        );
    }
    t.push(g);
    t
}

/// Issue 15's two targets on the instruction-count row: wsserver-c at most
/// `INSTR_MAX`, with every other server's figure beside it, and below
/// libwebsockets, Boost.Beast and tokio-tungstenite.
fn instructions(c: &Ctx) -> Vec<Target> {
    let id = c.r.plan.instr_id();
    let size = c.r.plan.instr.size;
    let what = format!(
        "instructions (issue 15): {WS} <= {} user-space instructions per echoed {size} B message (callgrind)",
        crate::fmt_count(INSTR_MAX)
    );
    let max = if !c.ran(&id) {
        Target { what, measured: String::new(), verdict: Verdict::NotApplicable(format!("{id} not run")) }
    } else {
        match c.fig(WS, &id, INSTR) {
            None => Target { what, measured: String::new(), verdict: Verdict::NotApplicable(c.why_none(WS, &id)) },
            Some(v) => {
                let others: Vec<String> = c
                    .r
                    .rows
                    .iter()
                    .filter(|r| r.workload == id && r.server != WS)
                    .filter_map(|r| Some(format!("{} {}", r.server, crate::fmt_count(c.fig(&r.server, &id, INSTR)?))))
                    .collect();
                let mut measured = format!("{WS} {} instructions/msg", crate::fmt_count(v));
                if !others.is_empty() {
                    let _ = write!(measured, " (same run: {})", others.join(", "));
                }
                let verdict = if v <= INSTR_MAX { Verdict::Met } else { Verdict::Missed };
                Target { what, measured, verdict }
            }
        }
    };
    let below = c.best_of(
        format!(
            "instructions (issue 15): {WS} below {} (user-space instructions per echoed {size} B message, callgrind)",
            INSTR_PEERS.join(", ")
        ),
        &[id],
        &INSTR_PEERS,
        INSTR,
    );
    vec![max, below]
}

/// Issue 12's target: wsserver-c's broadcast through topics at least the
/// best peer's deliveries per second; wsserver-rust's figure beside it.
fn topics(c: &Ctx) -> Target {
    let id = c.bcast.as_str();
    let what = format!("broadcast through topics (issue 12): {WS} deliveries/s >= the best peer's on {id}");
    vs_best_peer(c, id, what, Some((RUST, "publish through the Rust API")))
}

/// Target: wsserver-c's throughput on row `id` at least that of the best
/// peer measured there (peers with a row but no figure are named), with
/// `beside` (another wsserver row, what it is) shown after them.
fn vs_best_peer(c: &Ctx, id: &str, what: String, beside: Option<(&str, &str)>) -> Target {
    let na = |why: String| Target { what: what.clone(), measured: String::new(), verdict: Verdict::NotApplicable(why) };
    if !c.ran(id) {
        return na(format!("{id} not run"));
    }
    let Some(ws) = c.fig(WS, id, THROUGHPUT) else { return na(format!("{WS} {}", c.why_none(WS, id))) };
    let best = c.peers.iter().filter_map(|p| Some((*p, c.fig(p, id, THROUGHPUT)?))).max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((peer, pv)) = best else {
        return na(format!("no peer measured on {id} (peers: {})", c.peers.join(", ")));
    };
    let mut measured =
        format!("{WS} {}/s, best peer {peer} {}/s: {}", crate::fmt_count(ws), crate::fmt_count(pv), x(ws / pv));
    if let Some((_, true)) = c.ratio(WS, peer, id, THROUGHPUT) {
        measured.push_str(" (within the rounds' spread)");
    }
    let unmeasured: Vec<String> = c
        .peers
        .iter()
        .filter(|p| c.r.row(p, id).is_some() && c.fig(p, id, THROUGHPUT).is_none())
        .map(|p| format!("{p} ({})", c.why_none(p, id)))
        .collect();
    if !unmeasured.is_empty() {
        let _ = write!(measured, "; not measured: {}", unmeasured.join(", "));
    }
    if let Some((other, about)) = beside {
        if let Some(v) = c.fig(other, id, THROUGHPUT) {
            let _ = write!(measured, "; {other} ({about}) {}/s", crate::fmt_count(v));
        }
    }
    let verdict = if ws >= pv { Verdict::Met } else { Verdict::Missed };
    Target { what, measured, verdict }
}

/// The idle-memory target at `n` connections.
fn memory(c: &Ctx, n: usize, what: &str) -> Target {
    let id = format!("mem_{}k", n / 1000);
    let what = format!("{what} ({WS})");
    if !c.r.plan.mem_steps.contains(&n) {
        let done: Vec<String> =
            c.r.plan
                .mem_steps
                .iter()
                .filter_map(|s| {
                    let m = c.r.measure(WS, &format!("mem_{}k", s / 1000))?;
                    Some(format!("{:.2} KiB/conn at {}", m.value / 1024.0, crate::fmt_count(*s as f64)))
                })
                .collect();
        let measured = if done.is_empty() { String::new() } else { format!("measured instead: {}", done.join(", ")) };
        let why = format!(
            "{} mode does not open {} connections",
            if c.r.plan.quick { "quick" } else { "this" },
            crate::fmt_count(n as f64)
        );
        return Target { what, measured, verdict: Verdict::NotApplicable(why) };
    }
    memory_at(c, &id, what)
}

/// At most 2 KiB per idle connection on memory row `id`, none lost.
fn memory_at(c: &Ctx, id: &str, what: String) -> Target {
    match c.r.measure(WS, id) {
        None if !c.ran(id) => {
            Target { what, measured: String::new(), verdict: Verdict::NotApplicable(format!("{id} not run")) }
        }
        None => Target { what, measured: String::new(), verdict: Verdict::NotApplicable(c.why_none(WS, id)) },
        Some(m) => {
            let kib = m.value / 1024.0;
            let mut measured = format!("{kib:.2} KiB/conn");
            if m.errors > 0 {
                let _ = write!(measured, ", {} connection(s) lost", m.errors);
            }
            let verdict = if kib <= 2.0 && m.errors == 0 { Verdict::Met } else { Verdict::Missed };
            Target { what, measured, verdict }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::Launch;
    use crate::report::Row;
    use crate::servers::{Family, Spec};
    use crate::Plan;
    use std::path::Path;
    use std::time::Duration;

    fn spec(name: &'static str) -> Spec {
        let launch = || Launch { argv: Vec::new(), raw: false };
        let family = match name {
            WS | RUST | POLL | QT => Family::Wsserver,
            RAW => Family::Ceiling,
            _ => Family::Peer,
        };
        Spec {
            name,
            about: "",
            family,
            echo: launch(),
            broadcast: Ok(launch()),
            cross: None,
            skip: None,
            deflate: None,
        }
    }

    /// One single-round row: throughput `value`, `cpu` µs/op of which a tenth in user space.
    fn row(server: &str, workload: &str, value: f64, cpu: f64) -> Row {
        let m = Measure { value, server_cpu_us: Some(cpu), server_user_us: Some(cpu / 10.0), ..Measure::default() };
        Row::from_rounds(server.into(), workload.into(), vec![Ok(m)])
    }

    fn verdicts(rows: &[Row]) -> Vec<(String, &'static str)> {
        all_targets(rows).into_iter().map(|t| (t.what, t.verdict.word())).collect()
    }

    /// Every target of a full single-round plan over `rows`.
    fn all_targets(rows: &[Row]) -> Vec<Target> {
        let plan = Plan::new(false, Some(1));
        let specs: Vec<Spec> = [WS, POLL, RUST, QT, TT, QTWS, "libwebsockets", RAW].into_iter().map(spec).collect();
        let report = Report {
            plan: &plan,
            specs: &specs,
            rows,
            exits: &[],
            root: Path::new("."),
            elapsed: Duration::ZERO,
            server_cpu: Some(0),
        };
        evaluate(&report)
    }

    fn verdict<'a>(all: &'a [(String, &'static str)], starts: &str) -> &'a str {
        all.iter().find(|(what, _)| what.starts_with(starts)).map(|(_, v)| *v).expect(starts)
    }

    #[test]
    fn a_peer_ahead_is_a_miss_and_the_tokio_tungstenite_ratios_are_checked_per_row() {
        let mut rows = Vec::new();
        for (id, tt) in [("echo_16b_100c", 40.0), ("echo_16k_100c", 60.0), ("echo_16b_1000c", 20.0)] {
            rows.push(row(WS, id, 100.0, 10.0));
            rows.push(row(RUST, id, 100.0, 10.0));
            rows.push(row(TT, id, tt, 30.0));
            rows.push(row(RAW, id, 110.0, 9.0));
        }
        // libwebsockets is ahead on one echo row only.
        rows.push(row("libwebsockets", "echo_16b_100c", 120.0, 8.0));
        rows.push(row("libwebsockets", "echo_16k_100c", 50.0, 12.0));
        rows.push(row("libwebsockets", "echo_16b_1000c", 90.0, 11.0));
        let v = verdicts(&rows);
        assert_eq!(verdict(&v, "echo and broadcast: wsserver-c throughput"), "MISSED");
        assert_eq!(verdict(&v, "16 B echo: wsserver-c throughput >= 0.8x"), "met");
        assert_eq!(verdict(&v, "echo 16 B, 100 connections: wsserver-c throughput >= 2.2x"), "met");
        assert_eq!(verdict(&v, "echo 16 KiB, 100 connections: wsserver-c throughput >= 1.7x"), "MISSED");
        assert_eq!(verdict(&v, "echo 16 B, 1,000 connections: wsserver-c throughput >= 3.8x"), "met");
        assert_eq!(verdict(&v, "C ABI costs < 5%"), "met");
        assert_eq!(verdict(&v, "echo: wsserver-c server CPU µs/op lowest"), "MISSED");

        // Without the row where libwebsockets leads, wsserver is ahead everywhere.
        rows.retain(|r| !(r.server == "libwebsockets" && r.workload == "echo_16b_100c"));
        rows.push(row("libwebsockets", "echo_16b_100c", 95.0, 10.5));
        let v = verdicts(&rows);
        assert_eq!(verdict(&v, "echo and broadcast: wsserver-c throughput"), "met");
        assert_eq!(verdict(&v, "echo: wsserver-c server CPU µs/op lowest"), "met");
        assert_eq!(verdict(&v, "100,000 idle connections"), "n/a");
    }

    #[test]
    fn the_poll_example_is_held_to_15_percent_of_wsserver_c_and_is_no_peer() {
        let ids = ["echo_16b_100c", "echo_16k_100c", "echo_16b_1000c"];
        let with_poll = |poll_cpu: [f64; 3]| {
            let mut rows = Vec::new();
            for (id, poll) in ids.iter().zip(poll_cpu) {
                rows.push(row(WS, id, 100.0, 10.0));
                rows.push(row(TT, id, 40.0, 30.0));
                rows.push(row(POLL, id, 100.0, poll));
            }
            verdicts(&rows)
        };
        let what = "event queue costs < 15%";
        assert_eq!(verdict(&with_poll([11.4, 10.0, 9.0]), what), "met");
        assert_eq!(verdict(&with_poll([11.4, 11.6, 9.0]), what), "MISSED");
        // Lower CPU than wsserver-c is fine, and being wsserver itself, the
        // poll example does not count against "lowest of all WebSocket servers".
        let v = with_poll([8.0, 8.0, 8.0]);
        assert_eq!(verdict(&v, what), "met");
        assert_eq!(verdict(&v, "echo: wsserver-c server CPU µs/op lowest"), "met");
        // Not in the run: n/a, not a miss.
        let rows: Vec<Row> = ids.iter().map(|id| row(WS, id, 100.0, 10.0)).collect();
        assert_eq!(verdict(&verdicts(&rows), what), "n/a");
    }
    #[test]
    fn the_qt_binding_needs_3x_qtwebsockets_throughput_and_a_tenth_of_its_memory() {
        let ids = ["echo_16b_100c", "echo_16k_100c", "echo_16b_1000c"];
        let run = |qtws: [f64; 3], mem: Option<(f64, f64)>| {
            let mut rows = Vec::new();
            for (id, q) in ids.iter().zip(qtws) {
                rows.push(row(WS, id, 100.0, 10.0));
                rows.push(row(QT, id, 90.0, 11.0));
                rows.push(row(QTWS, id, q, 40.0));
            }
            if let Some((qt, qtws)) = mem {
                rows.push(row(QT, "mem_10k", qt, 0.0));
                rows.push(row(QTWS, "mem_10k", qtws, 0.0));
            }
            verdicts(&rows)
        };
        let (tp, mem) = ("Qt binding (issue 11): wsserver-qt echo", "Qt binding (issue 11): wsserver-qt memory");
        let v = run([30.0, 20.0, 29.0], Some((1500.0, 20_000.0)));
        assert_eq!(verdict(&v, tp), "met");
        assert_eq!(verdict(&v, mem), "met");
        // One echo row under 3x; memory only 5x lower.
        let v = run([30.0, 31.0, 29.0], Some((1500.0, 7_500.0)));
        assert_eq!(verdict(&v, tp), "MISSED");
        assert_eq!(verdict(&v, mem), "MISSED");
        // No memory rows measured: n/a. The Qt binding is wsserver, not a
        // peer: slower than wsserver-c, it misses nothing of issue 4's.
        let v = run([30.0, 20.0, 29.0], None);
        assert_eq!(verdict(&v, mem), "n/a");
        assert_eq!(verdict(&v, "echo and broadcast: wsserver-c throughput"), "met");
    }

    #[test]
    fn broadcast_through_topics_needs_the_best_peers_deliveries() {
        let id = "broadcast_1000c";
        let run = |ws: f64, lws: f64| {
            let rows = vec![
                row(WS, id, ws, 5.0),
                row(RUST, id, 2.0 * ws, 4.0), // wsserver itself: never the best peer
                row(TT, id, 300.0, 9.0),
                row(QTWS, id, 200.0, 12.0),
                row("libwebsockets", id, lws, 6.0),
                row(RAW, id, 10_000.0, 1.0), // the ceiling is no peer either
            ];
            let what = "broadcast through topics (issue 12)";
            let v = verdicts(&rows);
            let t = evaluate_one(&rows, what);
            (verdict(&v, what).to_string(), t)
        };
        let (v, measured) = run(1000.0, 900.0);
        assert_eq!(v, "met");
        assert!(measured.contains("best peer libwebsockets 900/s: 1.11x"), "{measured}");
        assert!(measured.contains("wsserver-rust (publish through the Rust API) 2,000/s"), "{measured}");
        // Equal is enough; one peer ahead is a miss, whichever it is.
        assert_eq!(run(900.0, 900.0).0, "met");
        let (v, measured) = run(850.0, 900.0);
        assert_eq!(v, "MISSED");
        assert!(measured.contains("0.94x"), "{measured}");
        // wsserver-c not measured, or no peer: n/a, never a miss.
        let rows = vec![row(TT, id, 300.0, 9.0)];
        assert_eq!(verdict(&verdicts(&rows), "broadcast through topics"), "n/a");
        let rows = vec![row(WS, id, 1000.0, 5.0), row(RUST, id, 900.0, 5.0), row(RAW, id, 5000.0, 1.0)];
        assert_eq!(verdict(&verdicts(&rows), "broadcast through topics"), "n/a");
        let rows = vec![row(WS, "echo_16b_100c", 100.0, 10.0)];
        assert_eq!(verdict(&verdicts(&rows), "broadcast through topics"), "n/a");
    }

    #[test]
    fn deflate_on_needs_the_best_peer_and_2_kib_per_idle_connection() {
        let (echo, bcast, mem) = ("deflate_echo_16k_100c_on", "deflate_bcast_1000c_on", "deflate_mem_10k");
        let what = |id: &str| format!("deflate on (issue 13): wsserver-c >= the best peer with deflate on, {id}");
        let mut rows = vec![
            row(WS, echo, 4000.0, 50.0),
            row("libwebsockets", echo, 2000.0, 100.0),
            row(TT, echo, 1000.0, 10.0),
            row(WS, bcast, 10_000.0, 8.0),
            Row::from_rounds("libwebsockets".into(), bcast.into(), vec![Err("server did not start".into())]),
            row(WS, mem, 1.9 * 1024.0, 0.0),
        ];
        let v = verdicts(&rows);
        assert_eq!(verdict(&v, &what(echo)), "met");
        assert!(evaluate_one(&rows, &what(echo)).contains("best peer libwebsockets 2,000/s: 2.00x"));
        assert_eq!(verdict(&v, &what(bcast)), "n/a", "no peer measured");
        assert_eq!(verdict(&v, "deflate on, no context takeover"), "met");
        // A peer ahead, or more than 2 KiB per connection: missed.
        rows.push(row(TT, bcast, 11_000.0, 9.0));
        rows.push(row(WS, mem, 2.2 * 1024.0, 0.0));
        rows.swap_remove(5);
        let v = verdicts(&rows);
        assert_eq!(verdict(&v, &what(bcast)), "MISSED");
        let measured = evaluate_one(&rows, &what(bcast));
        assert!(measured.contains("not measured: libwebsockets (skipped: server did not start)"), "{measured}");
        assert_eq!(verdict(&v, "deflate on, no context takeover"), "MISSED");
    }

    #[test]
    fn instructions_per_message_at_most_700_and_below_the_three_peers() {
        let id = "instructions_16b_10c";
        let (max, below) = ("instructions (issue 15): wsserver-c <= 700", "instructions (issue 15): wsserver-c below");
        let run = |ws: f64, lws: f64| {
            vec![
                row(WS, id, ws, 0.0),
                row(POLL, id, 3100.0, 0.0), // wsserver itself: beside, never a peer
                row("libwebsockets", id, lws, 0.0),
                row(TT, id, 5000.0, 0.0),
                row(RAW, id, 50.0, 0.0), // the ceiling is no peer
            ]
        };
        // Issue 15's figures: 3,063 against libwebsockets' 3,737.
        let rows = run(3063.0, 3737.0);
        let v = verdicts(&rows);
        assert_eq!(verdict(&v, max), "MISSED");
        assert_eq!(verdict(&v, below), "met");
        let m = evaluate_one(&rows, max);
        assert!(
            m.starts_with("wsserver-c 3,063 instructions/msg (same run: wsserver-poll 3,100, libwebsockets 3,737"),
            "{m}"
        );
        // boost-beast is not in this test's specs: named, not counted.
        let m = evaluate_one(&rows, below);
        assert!(m.contains("no server lower (2 comparisons)") && m.contains("boost-beast"), "{m}");
        // At 700 it is met; a peer below is a miss.
        let rows = run(700.0, 690.0);
        let v = verdicts(&rows);
        assert_eq!(verdict(&v, max), "met");
        assert_eq!(verdict(&v, below), "MISSED");
        assert!(evaluate_one(&rows, below).contains("instructions_16b_10c libwebsockets 0.99x"));
        // Not run, or wsserver-c skipped: n/a, never a miss.
        let rows = vec![row(WS, "echo_16b_100c", 100.0, 10.0)];
        let v = verdicts(&rows);
        assert_eq!(verdict(&v, max), "n/a");
        assert_eq!(verdict(&v, below), "n/a");
        let rows = vec![
            Row::from_rounds(WS.into(), id.into(), vec![Err("valgrind not runnable".into())]),
            row("libwebsockets", id, 3737.0, 0.0),
        ];
        let v = verdicts(&rows);
        assert_eq!(verdict(&v, max), "n/a");
        assert_eq!(verdict(&v, below), "n/a");
    }

    /// What one target measured, by the start of its description.
    fn evaluate_one(rows: &[Row], starts: &str) -> String {
        all_targets(rows).into_iter().find(|t| t.what.starts_with(starts)).map(|t| t.measured).expect(starts)
    }
}
