//! What one run's figures say, printed after the table and written to
//! results.json; reported, never asserted (nothing here changes the exit
//! code). Per row: wsserver-c against the best peer measured on it; then the
//! fixed targets of `TARGETS`.

use serde::Serialize;

use crate::fmt_count;
use crate::report::Report;
use crate::servers::Family;
use crate::workloads::Measure;

const WS: &str = "wsserver-c";

/// One figure of a measurement and its name ("": the row's unit).
type Figure = (&'static str, fn(&Measure) -> Option<f64>);
const VALUE: Figure = ("", |m| Some(m.value));
const CPU: Figure = ("server CPU µs/op", |m| m.server_cpu_us);

/// (a, b, rows, figure, op, limit): without `b`, a ceiling on `a`'s figure
/// on row `rows` (and no connection lost); with one, `a`'s figure over
/// `b`'s on every row whose id starts with `rows`. Left out when no such row ran.
type Target = (&'static str, &'static str, &'static str, Figure, &'static str, f64);
pub const TARGETS: &[Target] = &[
    (WS, "", "instructions_16b_10c", VALUE, "<=", 700.0),
    (WS, "", "mem_10k", VALUE, "<=", 400.0),
    (WS, "", "mem_100k", VALUE, "<=", 400.0),
    (WS, "", "mem_10k_tls", VALUE, "<=", 2048.0),
    (WS, "", "deflate_mem_10k", VALUE, "<=", 2048.0),
    (WS, "raw-tcp", "echo_16b", VALUE, ">=", 0.8),
    (WS, "wsserver-rust", "echo_", CPU, "<=", 1.05),
    ("wsserver-poll", WS, "echo_", CPU, "<=", 1.15),
    ("wsserver-python", "python-websockets", "echo_", VALUE, ">=", 1.5),
    ("wsserver-qt", "qtwebsockets", "echo_", VALUE, ">=", 3.0),
    ("wsserver-qt", "qtwebsockets", "mem_", VALUE, "<=", 0.1),
    (WS, "libwebsockets", "instructions", VALUE, "<=", 1.0),
    (WS, "boost-beast", "instructions", VALUE, "<=", 1.0),
    (WS, "tokio-tungstenite", "instructions", VALUE, "<=", 1.0),
];

/// One line of the summary: what, a one-word status, the figures.
#[derive(Serialize)]
pub struct Line {
    pub what: String,
    pub status: &'static str,
    pub measured: String,
}

/// A ratio, with a third decimal when two would show 1.00 for a gap.
fn x(r: f64) -> String {
    format!("{r:.0$}x", if r != 1.0 && (r - 1.0).abs() < 0.005 { 3 } else { 2 })
}

impl Report<'_> {
    fn fig(&self, server: &str, id: &str, f: Figure) -> Option<f64> {
        self.measure(server, id).and_then(f.1).filter(|v| *v > 0.0)
    }

    /// Why `server` has no figure on row `id`.
    fn why_none(&self, server: &str, id: &str) -> String {
        let why = match self.row(server, id).map(|r| &r.status) {
            _ if !self.specs.iter().any(|s| s.name == server) => "not in this run".to_string(),
            Some(Err(why)) => format!("skipped: {}", why.chars().take(70).collect::<String>()),
            _ => "not measured".to_string(),
        };
        format!("{server} {why}")
    }

    /// Row `id` (`higher`: more is better): wsserver-c against the best peer
    /// measured there, the ratio, and whether it is within the rounds' spread.
    fn best_peer(&self, id: &str, unit: &str, higher: bool) -> Line {
        let line = |status, measured| Line { what: id.to_string(), status, measured };
        let Some(ws) = self.fig(WS, id, VALUE) else { return line("n/a", self.why_none(WS, id)) };
        let peers = self.specs.iter().filter(|s| s.family == Family::Peer);
        let measured = peers.filter_map(|s| Some((s.name, self.fig(s.name, id, VALUE)?)));
        let cmp = |a: &(&str, f64), b: &(&str, f64)| a.1.total_cmp(&b.1);
        let Some((peer, pv)) = (if higher { measured.max_by(cmp) } else { measured.min_by(cmp) }) else {
            return line("n/a", "no peer measured".into());
        };
        let spread = [WS, peer].map(|s| self.row(s, id).and_then(|r| r.spread).unwrap_or(0.0));
        let (ratio, spread) = (ws / pv, spread[0].max(spread[1]));
        let status = match (ratio - 1.0).abs() <= spread {
            true => "even",
            false if (ratio > 1.0) == higher => "ahead",
            false => "behind",
        };
        let mut m = format!("{WS} {} vs {peer} {} {unit}: {}", fmt_count(ws), fmt_count(pv), x(ratio));
        if spread > 0.0 {
            m.push_str(&format!(" (rounds' spread ±{:.0}%)", spread * 100.0));
        }
        if let (Some(a), Some(b)) = (self.fig(WS, id, CPU), self.fig(peer, id, CPU)) {
            m.push_str(&format!("; {} {}", CPU.0, x(a / b)));
        }
        line(status, m)
    }

    /// One target, on the rows of it that ran.
    fn target(&self, &(a, b, rows, f, op, limit): &Target) -> Option<Line> {
        let of = |id: &str| if b.is_empty() { id == rows } else { id.starts_with(rows) };
        let wl: Vec<_> = self.plan.workloads().into_iter().filter(|w| of(&w.id) && self.ran(&w.id)).collect();
        let unit = wl.first()?.unit;
        let what = match b {
            "" => format!("{a} {rows} {op} {} {unit}", fmt_count(limit)),
            b => format!("{a} / {b} {} {op} {} on {rows}* rows", if f.0.is_empty() { unit } else { f.0 }, x(limit)),
        };
        let (mut parts, mut ok, mut missing) = (Vec::new(), true, None);
        for crate::Wl { id, .. } in wl {
            let lost = self.measure(a, &id).map_or(0, |m| m.errors);
            let v = match (self.measure(a, &id).and_then(f.1), b) {
                (Some(va), "") => Ok(va),
                (Some(va), b) if va > 0.0 => self.fig(b, &id, f).map(|vb| va / vb).ok_or_else(|| self.why_none(b, &id)),
                _ => Err(self.why_none(a, &id)),
            };
            match v {
                Ok(v) if b.is_empty() => {
                    ok &= v <= limit && lost == 0;
                    let lost = if lost > 0 { format!(", {lost} connection(s) lost") } else { String::new() };
                    parts.push(format!("{} {unit}{lost}", fmt_count(v)));
                }
                Ok(v) => {
                    ok &= if op == "<=" { v <= limit } else { v >= limit };
                    parts.push(format!("{id} {}", x(v)));
                }
                Err(why) => missing = missing.or(Some(why)),
            }
        }
        let status = if parts.is_empty() {
            "n/a"
        } else if ok {
            "met"
        } else {
            "MISSED"
        };
        let measured = if parts.is_empty() { missing.unwrap_or_default() } else { parts.join(", ") };
        Some(Line { what, status, measured })
    }

    fn ran(&self, id: &str) -> bool {
        self.rows.iter().any(|r| r.workload == id)
    }

    /// Every run row against its best peer, in table order.
    pub fn summary(&self) -> Vec<Line> {
        self.plan
            .workloads()
            .iter()
            .filter(|w| self.ran(&w.id))
            .map(|w| self.best_peer(&w.id, w.unit, w.higher))
            .collect()
    }

    /// The targets whose rows ran.
    pub fn targets(&self) -> Vec<Line> {
        TARGETS.iter().filter_map(|t| self.target(t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::report::{Report, Row};
    use crate::servers::{Family, Spec};
    use crate::workloads::Measure;
    use crate::Plan;

    /// A row of one round per value given, `cpu` µs/op each.
    fn row(server: &str, id: &str, values: &[f64], cpu: f64) -> Row {
        let m = |v: f64| Ok(Measure { value: v, server_cpu_us: Some(cpu), ..Measure::default() });
        Row::from_rounds(server.into(), id.into(), values.iter().map(|v| m(*v)).collect())
    }

    /// The summary's lines (`targets`: the targets').
    fn lines(rows: &[Row], targets: bool) -> Vec<super::Line> {
        let plan = Plan::new(false, Some(1));
        let names = ["wsserver-c", "wsserver-rust", "wsserver-poll", "libwebsockets", "tokio-tungstenite", "raw-tcp"];
        let family = |n: &str| match n {
            "raw-tcp" => Family::Ceiling,
            n if n.starts_with("wsserver") => Family::Wsserver,
            _ => Family::Peer,
        };
        let specs: Vec<Spec> = names.into_iter().map(|n| Spec::bare(n, family(n), &[])).collect();
        let (root, elapsed) = (".".as_ref(), Default::default());
        let r = Report { plan: &plan, specs: &specs, rows, exits: &[], root, elapsed, server_cpu: None };
        if targets {
            r.targets()
        } else {
            r.summary()
        }
    }

    /// (status, measured) of the line starting with `starts`.
    fn status(rows: &[Row], targets: bool, starts: &str) -> (&'static str, String) {
        let lines = lines(rows, targets);
        let l = lines.iter().find(|l| l.what.starts_with(starts)).expect(starts);
        (l.status, l.measured.clone())
    }

    #[test]
    fn the_best_peer_is_the_best_measured_peer_and_never_wsserver_or_the_ceiling() {
        let id = "echo_16b_100c";
        let servers = [("wsserver-c", 100.0, 10.0), ("wsserver-rust", 500.0, 1.0), ("raw-tcp", 900.0, 1.0)];
        let peers = [("libwebsockets", 80.0, 20.0), ("tokio-tungstenite", 40.0, 30.0)];
        let mut rows: Vec<Row> = servers.iter().chain(&peers).map(|(s, v, cpu)| row(s, id, &[*v], *cpu)).collect();
        let m = "wsserver-c 100 vs libwebsockets 80 msg/s: 1.25x; server CPU µs/op 0.50x";
        assert_eq!(status(&rows, false, id), ("ahead", m.into()));
        // Lower is better on memory: the lowest peer is the best one.
        for (s, v) in [("wsserver-c", 500.0), ("libwebsockets", 300.0), ("tokio-tungstenite", 900.0)] {
            rows.push(row(s, "mem_10k", &[v], 0.0));
        }
        let (s, m) = status(&rows, false, "mem_10k");
        assert!(s == "behind" && m.contains("vs libwebsockets 300 bytes/conn: 1.67x"), "{m}");
        // No peer measured, or wsserver-c not: n/a with the reason.
        assert_eq!(status(&[row("wsserver-c", id, &[1.0], 1.0), row("raw-tcp", id, &[9.0], 1.0)], false, id).0, "n/a");
        let got = status(&[row("libwebsockets", id, &[100.0], 1.0)], false, id);
        assert_eq!(got, ("n/a", "wsserver-c not measured".into()));
        // wsserver-c's median 100, spread (110 - 90) / 2 / 100 = 10%: within it, even.
        let ws = || row("wsserver-c", id, &[90.0, 100.0, 110.0], 1.0);
        let (s, m) = status(&[ws(), row("libwebsockets", id, &[95.0; 3], 1.0)], false, id);
        assert!(s == "even" && m.contains("spread ±10%"), "{m}");
        assert_eq!(status(&[ws(), row("libwebsockets", id, &[120.0; 3], 1.0)], false, id).0, "behind");
    }

    #[test]
    fn ceilings_and_comparisons_give_met_missed_or_na() {
        let rows = |ws_mem: f64, poll_cpu: f64| {
            let echo = ["echo_16b_100c", "echo_16k_100c"]
                .map(|id| [(id, "wsserver-c", 10.0), (id, "wsserver-poll", poll_cpu)]);
            let v = echo.concat().into_iter().map(|(id, s, cpu)| row(s, id, &[100.0], cpu));
            v.chain([row("wsserver-c", "mem_10k", &[ws_mem], 0.0)]).collect::<Vec<_>>()
        };
        let t = |ws_mem, poll_cpu, what| status(&rows(ws_mem, poll_cpu), true, what);
        let (mem, poll) = ("wsserver-c mem_10k <= 400", "wsserver-poll / wsserver-c server CPU µs/op <= 1.15x");
        assert_eq!(t(380.0, 11.4, mem), ("met", "380 bytes/conn".into()));
        assert_eq!(t(380.0, 11.4, poll), ("met", "echo_16b_100c 1.14x, echo_16k_100c 1.14x".into()));
        assert_eq!((t(420.0, 11.6, mem).0, t(420.0, 11.6, poll).0), ("MISSED", "MISSED"));
        assert_eq!(
            t(380.0, 11.4, "wsserver-python / python-websockets"),
            ("n/a", "wsserver-python not in this run".into())
        );
        // A target whose rows did not run is not listed.
        assert!(lines(&rows(380.0, 11.4), true)
            .iter()
            .all(|l| !l.what.contains("mem_10k_tls") && !l.what.contains("instructions")));
        let id = "instructions_16b_10c";
        let instr = [row("wsserver-c", id, &[650.0], 0.0), row("libwebsockets", id, &[3700.0], 0.0)];
        assert_eq!(status(&instr, true, "wsserver-c instructions"), ("met", "650 instr/msg".into()));
        assert_eq!(status(&instr, true, "wsserver-c / libwebsockets"), ("met", "instructions_16b_10c 0.18x".into()));
        assert_eq!(status(&instr, true, "wsserver-c / boost-beast").1, "boost-beast not in this run");
        assert_eq!(status(&instr, true, "wsserver-c / tokio-tungstenite").1, "tokio-tungstenite not measured");
        let mut r = rows(380.0, 11.4);
        r.push(Row::from_rounds("wsserver-c".into(), "mem_100k".into(), vec![Err("fd limit".into())]));
        assert_eq!(status(&r, true, "wsserver-c mem_100k"), ("n/a", "wsserver-c skipped: fd limit".into()));
        // At least 0.8x raw-tcp on the 16 B echo rows.
        let raw = |v: f64| {
            let rows = [row("wsserver-c", "echo_16b_100c", &[100.0], 1.0), row("raw-tcp", "echo_16b_100c", &[v], 1.0)];
            status(&rows, true, "wsserver-c / raw-tcp msg/s >= 0.80x")
        };
        assert_eq!((raw(110.0), raw(130.0).0), (("met", "echo_16b_100c 0.91x".into()), "MISSED"));
        // A connection lost misses the ceiling whatever the figure.
        let lost = Measure { value: 100.0, errors: 2, ..Measure::default() };
        let r = [Row::from_rounds("wsserver-c".into(), "mem_10k".into(), vec![Ok(lost)])];
        assert_eq!(status(&r, true, mem), ("MISSED", "100 bytes/conn, 2 connection(s) lost".into()));
    }
}
