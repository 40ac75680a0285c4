//! What one run's figures say, printed after the table and written to
//! results.json; reported, never asserted (nothing here changes the exit
//! code). Per row: wsserver-c against the best peer measured on it. Then the
//! fixed targets, as data: ceilings on single rows (`CEILINGS`) and
//! comparisons of two servers over a set of rows (`VERSUS`).

use serde::Serialize;

use crate::fmt_count;
use crate::report::Report;
use crate::servers::Family;
use crate::workloads::Measure;

const WS: &str = "wsserver-c";

/// One figure of a measurement and its name.
#[derive(Clone, Copy)]
pub struct Figure(&'static str, fn(&Measure) -> Option<f64>);

/// The row's own figure (named by its unit).
const VALUE: Figure = Figure("", |m| Some(m.value));
const CPU: Figure = Figure("server CPU µs/op", |m| m.server_cpu_us);

/// wsserver-c's figure on row `.0` is at most `.1` of the row's unit (and
/// no connection was lost). A row that did not run is left out.
pub const CEILINGS: &[(&str, f64)] = &[
    ("instructions_16b_10c", 700.0),
    ("mem_10k", 400.0),
    ("mem_100k", 400.0),
    ("mem_10k_tls", 2048.0),
    ("deflate_mem_10k", 2048.0),
];

/// A bound on the ratio of two servers' figures.
#[derive(Clone, Copy)]
pub enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

/// Server `a`'s figure over server `b`'s, within `bound` on every row whose
/// id starts with `rows` (left out when no such row ran).
pub struct Versus(&'static str, &'static str, &'static str, Figure, Bound);

pub const VERSUS: &[Versus] = &[
    Versus(WS, "raw-tcp", "echo_16b", VALUE, Bound::AtLeast(0.8)),
    Versus(WS, "wsserver-rust", "echo_", CPU, Bound::AtMost(1.05)),
    Versus("wsserver-poll", WS, "echo_", CPU, Bound::AtMost(1.15)),
    Versus("wsserver-python", "python-websockets", "echo_", VALUE, Bound::AtLeast(1.5)),
    Versus("wsserver-qt", "qtwebsockets", "echo_", VALUE, Bound::AtLeast(3.0)),
    Versus("wsserver-qt", "qtwebsockets", "mem_", VALUE, Bound::AtMost(0.1)),
    Versus(WS, "libwebsockets", "instructions", VALUE, Bound::AtMost(1.0)),
    Versus(WS, "boost-beast", "instructions", VALUE, Bound::AtMost(1.0)),
    Versus(WS, "tokio-tungstenite", "instructions", VALUE, Bound::AtMost(1.0)),
];

/// One line of the summary: what, a one-word status, the figures.
#[derive(Serialize)]
pub struct Line {
    pub what: String,
    pub status: &'static str,
    pub measured: String,
}

fn line(what: String, status: &'static str, measured: String) -> Line {
    Line { what, status, measured }
}

/// A ratio, with a third decimal when two would show 1.00 for a gap.
fn x(r: f64) -> String {
    if r != 1.0 && (r - 1.0).abs() < 0.005 {
        format!("{r:.3}x")
    } else {
        format!("{r:.2}x")
    }
}

impl Report<'_> {
    fn fig(&self, server: &str, id: &str, f: Figure) -> Option<f64> {
        self.measure(server, id).and_then(f.1).filter(|v| *v > 0.0)
    }

    /// The larger spread over the rounds of `a`'s and `b`'s figure on row `id`.
    fn spread2(&self, a: &str, b: &str, id: &str, f: Figure) -> f64 {
        let s = |s: &str| self.row(s, id).and_then(|r| r.spread_of(f.1)).unwrap_or(0.0);
        s(a).max(s(b))
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
    pub fn best_peer(&self, id: &str, unit: &str, higher: bool) -> Line {
        let na = |why: String| line(id.to_string(), "n/a", why);
        let Some(ws) = self.fig(WS, id, VALUE) else { return na(self.why_none(WS, id)) };
        let peers = self.specs.iter().filter(|s| s.family == Family::Peer);
        let measured = peers.filter_map(|s| Some((s.name, self.fig(s.name, id, VALUE)?)));
        let cmp = |a: &(&str, f64), b: &(&str, f64)| a.1.total_cmp(&b.1);
        let Some((peer, pv)) = (if higher { measured.max_by(cmp) } else { measured.min_by(cmp) }) else {
            return na("no peer measured".into());
        };
        let (ratio, spread) = (ws / pv, self.spread2(WS, peer, id, VALUE));
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
        line(id.to_string(), status, m)
    }

    /// The ceiling on row `id`.
    fn ceiling(&self, id: &str, max: f64, unit: &str) -> Line {
        let what = format!("{WS} {id} <= {} {unit}", fmt_count(max));
        let Some(m) = self.measure(WS, id) else { return line(what, "n/a", self.why_none(WS, id)) };
        let mut measured = format!("{} {unit}", fmt_count(m.value));
        if m.errors > 0 {
            measured.push_str(&format!(", {} connection(s) lost", m.errors));
        }
        line(what, if m.value <= max && m.errors == 0 { "met" } else { "MISSED" }, measured)
    }

    fn ran(&self, id: &str) -> bool {
        self.rows.iter().any(|r| r.workload == id)
    }

    fn versus(&self, Versus(a, b, rows, f, bound): &Versus) -> Option<Line> {
        let (op, limit, holds): (_, _, fn(f64, f64) -> bool) = match *bound {
            Bound::AtLeast(v) => (">=", v, |r, v| r >= v),
            Bound::AtMost(v) => ("<=", v, |r, v| r <= v),
        };
        let wl: Vec<_> =
            self.plan.workloads().into_iter().filter(|w| w.0.starts_with(rows) && self.ran(&w.0)).collect();
        let unit = wl.first()?.2;
        let name = if f.0.is_empty() { unit } else { f.0 };
        let what = format!("{a} / {b} {name} {op} {} on {rows}* rows", x(limit));
        let (mut parts, mut ok, mut missing) = (Vec::new(), true, None);
        for (id, ..) in wl {
            match (self.fig(a, &id, *f), self.fig(b, &id, *f)) {
                (Some(va), Some(vb)) => {
                    ok &= holds(va / vb, limit);
                    parts.push(format!("{id} {}", x(va / vb)));
                }
                (None, _) => missing = missing.or(Some(self.why_none(a, &id))),
                (_, None) => missing = missing.or(Some(self.why_none(b, &id))),
            }
        }
        Some(match (parts.is_empty(), ok) {
            (true, _) => line(what, "n/a", missing.unwrap_or_default()),
            (false, ok) => line(what, if ok { "met" } else { "MISSED" }, parts.join(", ")),
        })
    }

    /// Every run row against its best peer, in table order.
    pub fn summary(&self) -> Vec<Line> {
        self.plan.workloads().iter().filter(|w| self.ran(&w.0)).map(|w| self.best_peer(&w.0, w.2, w.3)).collect()
    }

    /// The fixed targets of the rows that ran: the ceilings, then the comparisons.
    pub fn targets(&self) -> Vec<Line> {
        let wl = self.plan.workloads();
        let ceilings = CEILINGS.iter().filter_map(|(id, max)| {
            let w = wl.iter().find(|w| w.0 == *id && self.ran(id))?;
            Some(self.ceiling(id, *max, w.2))
        });
        ceilings.chain(VERSUS.iter().filter_map(|v| self.versus(v))).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::report::{Report, Row};
    use crate::servers::{Family, Spec};
    use crate::workloads::Measure;
    use crate::Plan;

    fn spec(name: &'static str) -> Spec {
        let family = match name {
            "raw-tcp" => Family::Ceiling,
            n if n.starts_with("wsserver") => Family::Wsserver,
            _ => Family::Peer,
        };
        Spec::bare(name, family, &[])
    }

    /// A row of one round per value given, `cpu` µs/op each.
    fn row(server: &str, id: &str, values: &[f64], cpu: f64) -> Row {
        let m = |v: f64| Ok(Measure { value: v, server_cpu_us: Some(cpu), ..Measure::default() });
        Row::from_rounds(server.into(), id.into(), values.iter().map(|v| m(*v)).collect())
    }

    fn with<T>(rows: &[Row], f: impl Fn(&Report) -> T) -> T {
        let plan = Plan::new(false, Some(1));
        let names = ["wsserver-c", "wsserver-rust", "wsserver-poll", "libwebsockets", "tokio-tungstenite", "raw-tcp"];
        let specs: Vec<Spec> = names.into_iter().map(spec).collect();
        f(&Report {
            plan: &plan,
            specs: &specs,
            rows,
            exits: &[],
            root: ".".as_ref(),
            elapsed: Default::default(),
            server_cpu: None,
        })
    }

    fn status(lines: &[super::Line], starts: &str) -> (&'static str, String) {
        let l = lines.iter().find(|l| l.what.starts_with(starts)).expect(starts);
        (l.status, l.measured.clone())
    }

    #[test]
    fn the_best_peer_is_the_best_measured_peer_and_never_wsserver_or_the_ceiling() {
        let id = "echo_16b_100c";
        let mut rows = vec![
            row("wsserver-c", id, &[100.0], 10.0),
            row("wsserver-rust", id, &[500.0], 1.0),
            row("raw-tcp", id, &[900.0], 1.0),
            row("libwebsockets", id, &[80.0], 20.0),
            row("tokio-tungstenite", id, &[40.0], 30.0),
        ];
        let (s, m) = with(&rows, |r| status(&r.summary(), id));
        assert_eq!(s, "ahead");
        assert_eq!(m, "wsserver-c 100 vs libwebsockets 80 msg/s: 1.25x; server CPU µs/op 0.50x");
        // Lower is better on memory: the lowest peer is the best one.
        rows.push(row("wsserver-c", "mem_10k", &[500.0], 0.0));
        rows.push(row("libwebsockets", "mem_10k", &[300.0], 0.0));
        rows.push(row("tokio-tungstenite", "mem_10k", &[900.0], 0.0));
        let (s, m) = with(&rows, |r| status(&r.summary(), "mem_10k"));
        assert_eq!(s, "behind");
        assert!(m.contains("vs libwebsockets 300 bytes/conn: 1.67x"), "{m}");
        // No peer measured, or wsserver-c not: n/a with the reason.
        let rows = vec![row("wsserver-c", id, &[100.0], 1.0), row("raw-tcp", id, &[900.0], 1.0)];
        assert_eq!(with(&rows, |r| status(&r.summary(), id)).0, "n/a");
        let rows = vec![row("libwebsockets", id, &[100.0], 1.0)];
        assert_eq!(with(&rows, |r| status(&r.summary(), id)), ("n/a", "wsserver-c not measured".into()));
    }

    #[test]
    fn a_gap_within_the_rounds_spread_is_even() {
        let id = "echo_16b_100c";
        // wsserver-c's median 100, spread (110 - 90) / 2 / 100 = 10%; the peer 95.
        let rows = vec![row("wsserver-c", id, &[90.0, 100.0, 110.0], 1.0), row("libwebsockets", id, &[95.0; 3], 1.0)];
        let (s, m) = with(&rows, |r| status(&r.summary(), id));
        assert_eq!((s, m.contains("spread ±10%")), ("even", true), "{m}");
        let rows = vec![row("wsserver-c", id, &[90.0, 100.0, 110.0], 1.0), row("libwebsockets", id, &[120.0; 3], 1.0)];
        assert_eq!(with(&rows, |r| status(&r.summary(), id)).0, "behind");
    }

    #[test]
    fn ceilings_and_comparisons_give_met_missed_or_na() {
        let rows = |ws_mem: f64, poll_cpu: f64| {
            let mut v: Vec<Row> = ["echo_16b_100c", "echo_16k_100c"]
                .iter()
                .flat_map(|id| [row("wsserver-c", id, &[100.0], 10.0), row("wsserver-poll", id, &[100.0], poll_cpu)])
                .collect();
            v.push(row("wsserver-c", "mem_10k", &[ws_mem], 0.0));
            v
        };
        let t = |ws_mem, poll_cpu| with(&rows(ws_mem, poll_cpu), |r| r.targets());
        let (mem, poll) = ("wsserver-c mem_10k <= 400", "wsserver-poll / wsserver-c server CPU µs/op <= 1.15x");
        assert_eq!(status(&t(380.0, 11.4), mem), ("met", "380 bytes/conn".into()));
        assert_eq!(status(&t(380.0, 11.4), poll), ("met", "echo_16b_100c 1.14x, echo_16k_100c 1.14x".into()));
        assert_eq!(status(&t(420.0, 11.6), mem).0, "MISSED");
        assert_eq!(status(&t(420.0, 11.6), poll).0, "MISSED");
        // A ceiling or comparison whose rows did not run is not listed; a
        // server not measured on a row that ran is n/a.
        let lines = t(380.0, 11.4);
        assert!(lines.iter().all(|l| !l.what.contains("mem_10k_tls") && !l.what.contains("mem_100k")));
        assert!(lines.iter().all(|l| !l.what.contains("instructions")));
        let id = "instructions_16b_10c";
        let instr = [row("wsserver-c", id, &[650.0], 0.0), row("libwebsockets", id, &[3700.0], 0.0)];
        let lines = with(&instr, |r| r.targets());
        let got: Vec<(&str, &str)> = lines.iter().map(|l| (l.status, l.measured.as_str())).collect();
        assert_eq!(got[..2], [("met", "650 instr/msg"), ("met", "instructions_16b_10c 0.18x")]);
        assert_eq!(got[2..], [("n/a", "boost-beast not in this run"), ("n/a", "tokio-tungstenite not measured")]);
        let mut r = rows(380.0, 11.4);
        r.push(Row::from_rounds("wsserver-c".into(), "mem_100k".into(), vec![Err("fd limit".into())]));
        let (s, why) = status(&with(&r, |r| r.targets()), "wsserver-c mem_100k");
        assert_eq!((s, why.as_str()), ("n/a", "wsserver-c skipped: fd limit"));
        let (s, why) = status(&t(380.0, 11.4), "wsserver-python / python-websockets");
        assert_eq!((s, why.as_str()), ("n/a", "wsserver-python not in this run"));
        // At least 0.8x raw-tcp on the 16 B echo rows.
        let raw = |v: f64| {
            let rows = [row("wsserver-c", "echo_16b_100c", &[100.0], 1.0), row("raw-tcp", "echo_16b_100c", &[v], 1.0)];
            with(&rows, |r| status(&r.targets(), "wsserver-c / raw-tcp msg/s >= 0.80x"))
        };
        assert_eq!(raw(110.0), ("met", "echo_16b_100c 0.91x".into()));
        assert_eq!(raw(130.0).0, "MISSED");
        // A connection lost misses the ceiling whatever the figure.
        let mut r = rows(100.0, 10.0);
        r.pop();
        r.push(Row::from_rounds(
            "wsserver-c".into(),
            "mem_10k".into(),
            vec![Ok(Measure { value: 100.0, errors: 2, ..Measure::default() })],
        ));
        assert_eq!(status(&with(&r, |r| r.targets()), mem).0, "MISSED");
    }
}
