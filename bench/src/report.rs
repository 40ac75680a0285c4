//! The table printed on stdout and build/bench/results.json.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::servers::Spec;
use crate::workloads::Measure;
use crate::{fmt_count, Plan};

/// Every round's result of one row.
pub type Rounds = Vec<Result<Measure, String>>;

pub struct Row {
    pub server: String,
    pub workload: String,
    /// Each figure the median of the measured rounds (or why none was).
    pub status: Result<Measure, String>,
    /// Every round's own result, in order (one for single-round rows).
    pub rounds: Rounds,
    /// Spread of `value` over the measured rounds, (max - min) / 2 / median;
    /// None with fewer than two.
    pub spread: Option<f64>,
}

/// Median of the values given (mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    // Empty: no element at (n / 2) - 1, wrapped to usize::MAX.
    Some(if n % 2 == 1 { v[n / 2] } else { (v.get((n / 2).wrapping_sub(1))? + v[n / 2]) / 2.0 })
}

/// (max - min) / 2 / median of the values; None with fewer than two.
fn spread(v: &[f64]) -> Option<f64> {
    let mid = median(v.to_vec()).filter(|m| v.len() > 1 && *m > 0.0)?;
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    Some((hi - lo) / 2.0 / mid)
}

impl Row {
    pub fn from_rounds(server: String, workload: String, rounds: Rounds) -> Row {
        let ok: Vec<(usize, &Measure)> =
            rounds.iter().enumerate().filter_map(|(i, r)| r.as_ref().ok().map(|m| (i, m))).collect();
        let values: Vec<f64> = ok.iter().map(|(_, m)| m.value).collect();
        let spread = spread(&values);
        let status = match median(values) {
            None => Err(rounds.iter().find_map(|r| r.as_ref().err()).cloned().unwrap_or_default()),
            Some(value) => {
                let of = |f: fn(&Measure) -> Option<f64>| median(ok.iter().filter_map(|(_, m)| f(m)).collect());
                // The notes are those of the round nearest the median, plus
                // the troubles of the others.
                let near = ok
                    .iter()
                    .min_by(|a, b| (a.1.value - value).abs().total_cmp(&(b.1.value - value).abs()))
                    .map(|(i, _)| *i);
                let mut notes: Vec<String> = Vec::new();
                for (i, r) in rounds.iter().enumerate() {
                    match r {
                        Ok(m) if Some(i) == near => notes.insert(0, m.note.clone()),
                        Ok(m) if m.errors > 0 || m.note.starts_with("noisy") => {
                            notes.push(format!("round {}: {}", i + 1, m.note))
                        }
                        Ok(_) => {}
                        Err(e) => notes.push(format!("round {} failed: {e}", i + 1)),
                    }
                }
                notes.retain(|n| !n.is_empty());
                Ok(Measure {
                    value,
                    p50_us: of(|m| m.p50_us),
                    p99_us: of(|m| m.p99_us),
                    server_cpu_us: of(|m| m.server_cpu_us),
                    server_user_us: of(|m| m.server_user_us),
                    server_sys_us: of(|m| m.server_sys_us),
                    server_cpu_pct: of(|m| m.server_cpu_pct),
                    gen_cpu_pct: of(|m| m.gen_cpu_pct),
                    other_cpu_pct: of(|m| m.other_cpu_pct),
                    errors: ok.iter().map(|(_, m)| m.errors).sum(),
                    note: notes.join("; "),
                })
            }
        };
        Row { server, workload, status, rounds, spread }
    }

    /// What the note column starts with for a row of several rounds: the
    /// spread, and how many rounds were measured when not all.
    fn rounds_note(&self) -> String {
        let (n, ok) = (self.rounds.len(), self.rounds.iter().filter(|r| r.is_ok()).count());
        let count = (ok < n).then(|| format!("({ok} of {n} rounds)"));
        self.spread.map(|s| format!("±{:.0}%", s * 100.0)).into_iter().chain(count).collect::<Vec<_>>().join(" ")
    }
}

pub struct Report<'a> {
    pub plan: &'a Plan,
    pub specs: &'a [Spec],
    pub rows: &'a [Row],
    pub exits: &'a [(&'static str, String)],
    pub root: &'a Path,
    pub elapsed: Duration,
    pub server_cpu: Option<usize>,
}

/// Servers whose figure is the 1.0 of each workload, first one measured wins.
const REFERENCES: [&str; 2] = ["wsserver-c", "wsserver-rust"];

impl Report<'_> {
    fn rounds_label(&self) -> String {
        format!("{} round{}", self.plan.rounds, if self.plan.rounds == 1 { "" } else { "s" })
    }

    pub fn row(&self, server: &str, workload: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.server == server && r.workload == workload)
    }

    pub fn measure(&self, server: &str, workload: &str) -> Option<&Measure> {
        self.row(server, workload).and_then(|r| r.status.as_ref().ok())
    }

    /// For the cross-server row: the same server's one-process broadcast
    /// beside it ("" for any other row, or when that one was not measured).
    fn beside_one_process(&self, server: &str, workload: &str, m: &Measure) -> String {
        let one = format!("broadcast_{}c", self.plan.bcast_clients);
        let cross = workload == self.plan.cross_id();
        let Some(o) = self.measure(server, &one).filter(|o| cross && o.value > 0.0) else { return String::new() };
        let us = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.0}"));
        let (p50, p99, ratio) = (us(o.p50_us), us(o.p99_us), m.value / o.value);
        format!("one process: {} deliveries/s, p50/p99 {p50}/{p99} µs (this row {ratio:.2}x)", fmt_count(o.value))
    }

    fn reference(&self, workload: &str) -> Option<(&'static str, f64)> {
        REFERENCES.iter().find_map(|s| self.measure(s, workload).filter(|m| m.value > 0.0).map(|m| (*s, m.value)))
    }

    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "\nwsbench ({} mode, {}): servers pinned to CPU {}, load generator to the other; ratio = value / wsserver's;\n\
             srv µs/op = server CPU (user + system) per message, usr µs/op = its user-space part (the kernel's loopback\n\
             TCP work is the same for every server; user time is where WebSocket implementations differ);\n\
             srv/gen/other cpu = CPU used by the server / the load generator / everything else (100% = one core)",
            if self.plan.quick { "quick" } else { "full" },
            self.rounds_label(),
            self.server_cpu.map(|c| c.to_string()).unwrap_or("(none)".into())
        );
        if self.plan.rounds > 1 {
            let _ = writeln!(
                o,
                "echo and broadcast rows: every figure is the median of {} rounds run across all servers in turn;\n\
                 the note starts with the spread of the value over them, ±(max - min) / 2 / median",
                self.plan.rounds
            );
        }
        for crate::Wl { id, label, unit, higher, .. } in self.plan.workloads() {
            if !self.rows.iter().any(|r| r.workload == id) {
                continue;
            }
            let reference = self.reference(&id);
            let shown_unit = if unit == "bytes/conn" { "KiB/conn" } else { unit };
            let _ = writeln!(
                o,
                "\n== {label} [{id}] ({}; ratio vs {}) ==",
                if higher { "higher is better" } else { "lower is better" },
                reference.map(|r| r.0).unwrap_or("-")
            );
            let head = ["server", "value", "unit", "ratio", "srv µs/op", "usr µs/op", "p50 µs", "p99 µs"];
            let _ = writeln!(o, "{}", columns(head.into_iter().chain(["srv cpu", "gen cpu", "other", "note"])));
            for r in self.rows.iter().filter(|r| r.workload == id) {
                let Ok(m) = &r.status else {
                    let _ = writeln!(o, "{:<18} skipped: {}", r.server, r.status.as_ref().unwrap_err());
                    continue;
                };
                let value = if unit == "bytes/conn" { format!("{:.2}", m.value / 1024.0) } else { fmt_count(m.value) };
                let ratio = reference.map(|(_, v)| format!("{:.2}x", m.value / v)).unwrap_or("-".into());
                let f = |x: Option<f64>, p: usize| x.map(|v| format!("{v:.p$}")).unwrap_or("-".into());
                let pct = |x: Option<f64>| x.map(|v| format!("{v:.0}%")).unwrap_or("-".into());
                let notes = [r.rounds_note(), self.beside_one_process(&r.server, &id, m), m.note.clone()];
                let note = notes.into_iter().filter(|n| !n.is_empty()).collect::<Vec<_>>().join("; ");
                let (cpu, usr) = (f(m.server_cpu_us, 2), f(m.server_user_us, 2));
                let cells =
                    [r.server.clone(), value, shown_unit.into(), ratio, cpu, usr, f(m.p50_us, 0), f(m.p99_us, 0)];
                let pcts = [pct(m.server_cpu_pct), pct(m.gen_cpu_pct), pct(m.other_cpu_pct), note];
                let _ = writeln!(o, "{}", columns(cells.iter().chain(pcts.iter()).map(String::as_str)));
            }
        }
        if self.plan.quick {
            let _ = writeln!(
                o,
                "\n(quick mode: 0.8 s windows, {}, no 10k/100k memory rows: a smoke test, not a verdict;\n\
                 \x20usr µs/op is sampled at timer ticks and coarse here. make bench for the figures.)",
                self.rounds_label()
            );
        }
        let blocks = [
            ("compared with the best peer (the other WebSocket libraries; ratio = wsserver-c / peer)", self.summary()),
            ("targets", self.targets()),
        ];
        for (title, lines) in blocks {
            let _ = writeln!(o, "\n{title}; reported, never asserted");
            for l in lines {
                let _ = writeln!(o, "  {:<7} {}: {}", l.status, l.what, l.measured);
            }
        }
        let _ = writeln!(o, "\n(total {:.0} s)", self.elapsed.as_secs_f64());
        o
    }

    pub fn json(&self) -> String {
        let wl = self.plan.workloads();
        let workloads: Vec<Value> = (wl.iter())
            .map(|w| {
                let reference = self.reference(&w.id).map(|r| r.0);
                let (id, label, unit, higher) = (&w.id, &w.label, w.unit, w.higher);
                json!({"id": id, "label": label, "unit": unit, "higher_is_better": higher, "reference_server": reference})
            })
            .collect();
        let servers: Vec<Value> = (self.specs.iter())
            .map(|s| {
                let exits: Vec<&String> = self.exits.iter().filter(|e| e.0 == s.name).map(|e| &e.1).collect();
                json!({"name": s.name, "about": s.about, "skipped": s.skip, "exits": exits})
            })
            .collect();
        let results: Vec<Value> = (self.rows.iter())
            .map(|r| {
                let unit = wl.iter().find(|w| w.id == r.workload).map_or("", |w| w.unit);
                let mut v = json!({"server": r.server, "workload": r.workload, "unit": unit});
                v.as_object_mut().unwrap().extend(result_json(r.status.as_ref().map_err(String::as_str)));
                if let Ok(m) = &r.status {
                    v["ratio"] = json!(self.reference(&r.workload).map(|(_, x)| m.value / x));
                    v["spread"] = json!(r.spread);
                }
                v["rounds"] =
                    r.rounds.iter().map(|x| Value::Object(result_json(x.as_ref().map_err(|e| e.as_str())))).collect();
                v
            })
            .collect();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let doc = json!({
            "tool": "wsbench",
            "mode": if self.plan.quick { "quick" } else { "full" },
            "rounds": self.plan.rounds,
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "git_commit": git_commit(self.root),
            "elapsed_s": self.elapsed.as_secs_f64(),
            "machine": {"cpus": crate::num_cpus(), "cpu_model": cpu_model(), "kernel": kernel.trim(), "server_cpu": self.server_cpu},
            "reference": REFERENCES[0],
            "workloads": workloads,
            "servers": servers,
            "results": results,
            "best_peer": self.summary(),
            "targets": self.targets(),
        });
        serde_json::to_string_pretty(&doc).expect("JSON of plain values") + "\n"
    }
}

/// One line of a workload's table: server, value, unit, ratio, four figures,
/// three CPU shares, note.
fn columns<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    const WIDTH: [i32; 11] = [-18, 14, -13, 7, 10, 10, 8, 8, 7, 7, 7];
    let mut o = String::new();
    for (i, c) in cells.enumerate() {
        let _ = match WIDTH.get(i) {
            Some(w) if *w < 0 => write!(o, "{c:<0$} ", (-w) as usize),
            Some(w) => write!(o, "{c:>0$} ", *w as usize),
            None => write!(o, " {c}"),
        };
    }
    o.trim_end().to_string()
}

/// The fields of one result: status, figures and note, or the reason it was skipped.
fn result_json(r: Result<&Measure, &str>) -> Map<String, Value> {
    let mut v = match r {
        Err(why) => json!({"status": "skipped", "reason": why}),
        Ok(m) => serde_json::to_value(m).expect("JSON of plain values"),
    };
    v.as_object_mut().expect("an object").entry("status").or_insert(json!("ok"));
    v.as_object().cloned().expect("an object")
}

fn git_commit(root: &Path) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(root).args(["rev-parse", "--short", "HEAD"]).output();
    out.ok().filter(|o| o.status.success()).map_or(String::new(), |o| String::from_utf8_lossy(&o.stdout).trim().into())
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1));
    model.unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(value: f64, cpu: f64) -> Measure {
        Measure { value, server_cpu_us: Some(cpu), note: format!("v{value}"), ..Measure::default() }
    }

    #[test]
    fn counts_and_columns() {
        let got: Vec<String> = [0.0, 999.4, 1000.0, 1_234_567.6, -12_345.0].map(fmt_count).into();
        assert_eq!(got, ["0", "999", "1,000", "1,234,568", "-12,345"]);
        assert_eq!(columns(["a", "1", "u"].into_iter()), format!("a{} {:>14} u", " ".repeat(17), 1));
    }

    #[test]
    fn medians_and_spread() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let row = Row::from_rounds(
            "s".into(),
            "w".into(),
            vec![Ok(m(100.0, 5.0)), Err("died".into()), Ok(m(120.0, 4.0)), Ok(m(90.0, 6.0))],
        );
        let Ok(mid) = &row.status else { panic!("no median") };
        assert_eq!(mid.value, 100.0);
        assert_eq!(mid.server_cpu_us, Some(5.0));
        // (120 - 90) / 2 / 100
        assert!((row.spread.unwrap() - 0.15).abs() < 1e-9);
        assert_eq!(mid.note, "v100; round 2 failed: died");
        assert_eq!(row.rounds_note(), "±15% (3 of 4 rounds)");
        let none = Row::from_rounds("s".into(), "w".into(), vec![Err("a".into()), Err("b".into())]);
        assert!(matches!(none.status, Err(ref w) if w == "a"));
    }
}
