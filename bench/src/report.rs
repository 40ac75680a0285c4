//! The table printed on stdout and build/bench/results.json.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::servers::Spec;
use crate::workloads::Measure;
use crate::{fmt_count, Plan};

pub enum Status {
    Ok(Measure),
    Skipped(String),
}

pub struct Row {
    pub server: String,
    pub workload: String,
    pub status: Status,
}

pub struct Report<'a> {
    pub quick: bool,
    pub plan: &'a Plan,
    pub specs: &'a [Spec],
    pub rows: &'a [Row],
    pub exits: &'a [(&'static str, Vec<String>)],
    pub root: &'a Path,
    pub elapsed: Duration,
    pub server_cpu: Option<usize>,
}

/// Servers whose figure is the 1.0 of each workload, first one measured wins.
const REFERENCES: [&str; 2] = ["wsserver-c", "wsserver-rust"];

impl Report<'_> {
    fn measure(&self, server: &str, workload: &str) -> Option<&Measure> {
        self.rows.iter().find(|r| r.server == server && r.workload == workload).and_then(|r| match &r.status {
            Status::Ok(m) => Some(m),
            Status::Skipped(_) => None,
        })
    }

    fn reference(&self, workload: &str) -> Option<(&'static str, f64)> {
        REFERENCES.iter().find_map(|s| self.measure(s, workload).filter(|m| m.value > 0.0).map(|m| (*s, m.value)))
    }

    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "\nwsbench ({} mode): servers pinned to CPU {}, load generator to the other; ratio = value / wsserver's;\n\
             srv µs/op = server CPU (user + system) per message, usr µs/op = its user-space part (the kernel's loopback\n\
             TCP work is the same for every server; user time is where WebSocket implementations differ);\n\
             srv/gen/other cpu = CPU used by the server / the load generator / everything else (100% = one core)",
            if self.quick { "quick" } else { "full" },
            self.server_cpu.map(|c| c.to_string()).unwrap_or("(none)".into())
        );
        for (id, label, unit, higher) in self.plan.workloads() {
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
            let _ = writeln!(
                o,
                "{:<18} {:>14} {:<13} {:>7} {:>10} {:>10} {:>8} {:>8} {:>7} {:>7} {:>7}  note",
                "server",
                "value",
                "unit",
                "ratio",
                "srv µs/op",
                "usr µs/op",
                "p50 µs",
                "p99 µs",
                "srv cpu",
                "gen cpu",
                "other"
            );
            for r in self.rows.iter().filter(|r| r.workload == id) {
                match &r.status {
                    Status::Skipped(why) => {
                        let _ = writeln!(o, "{:<18} skipped: {why}", r.server);
                    }
                    Status::Ok(m) => {
                        let value =
                            if unit == "bytes/conn" { format!("{:.2}", m.value / 1024.0) } else { fmt_count(m.value) };
                        let ratio = reference.map(|(_, v)| format!("{:.2}x", m.value / v)).unwrap_or("-".into());
                        let f = |x: Option<f64>, p: usize| x.map(|v| format!("{v:.p$}")).unwrap_or("-".into());
                        let pct = |x: Option<f64>| x.map(|v| format!("{v:.0}%")).unwrap_or("-".into());
                        let _ = writeln!(
                            o,
                            "{:<18} {:>14} {:<13} {:>7} {:>10} {:>10} {:>8} {:>8} {:>7} {:>7} {:>7}  {}",
                            r.server,
                            value,
                            shown_unit,
                            ratio,
                            f(m.server_cpu_us, 2),
                            f(m.server_user_us, 2),
                            f(m.p50_us, 0),
                            f(m.p99_us, 0),
                            pct(m.server_cpu_pct),
                            pct(m.gen_cpu_pct),
                            pct(m.other_cpu_pct),
                            m.note
                        );
                    }
                }
            }
        }
        let _ = writeln!(o, "\n(total {:.0} s)", self.elapsed.as_secs_f64());
        o
    }

    pub fn json(&self) -> String {
        let mut o = String::new();
        o.push_str("{\n");
        let _ = writeln!(o, "  \"tool\": \"wsbench\",");
        let _ = writeln!(o, "  \"mode\": {},", js(if self.quick { "quick" } else { "full" }));
        let _ = writeln!(o, "  \"unix_time\": {},", now_unix());
        let _ = writeln!(o, "  \"git_commit\": {},", js(&git_commit(self.root)));
        let _ = writeln!(o, "  \"elapsed_s\": {:.1},", self.elapsed.as_secs_f64());
        let _ = writeln!(
            o,
            "  \"machine\": {{\"cpus\": {}, \"cpu_model\": {}, \"kernel\": {}, \"server_cpu\": {}}},",
            crate::num_cpus(),
            js(&cpu_model()),
            js(std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim()),
            self.server_cpu.map(|c| c.to_string()).unwrap_or("null".into())
        );
        let _ = writeln!(o, "  \"reference\": {},", js(REFERENCES[0]));
        o.push_str("  \"workloads\": [\n");
        let wl = self.plan.workloads();
        for (i, (id, label, unit, higher)) in wl.iter().enumerate() {
            let _ = write!(
                o,
                "    {{\"id\": {}, \"label\": {}, \"unit\": {}, \"higher_is_better\": {}, \"reference_server\": {}}}",
                js(id),
                js(label),
                js(unit),
                higher,
                self.reference(id).map(|r| js(r.0)).unwrap_or("null".into())
            );
            o.push_str(if i + 1 < wl.len() { ",\n" } else { "\n" });
        }
        o.push_str("  ],\n  \"servers\": [\n");
        for (i, s) in self.specs.iter().enumerate() {
            let exits = self.exits.iter().find(|e| e.0 == s.name).map(|e| e.1.clone()).unwrap_or_default();
            let _ = write!(
                o,
                "    {{\"name\": {}, \"about\": {}, \"skipped\": {}, \"exits\": [{}]}}",
                js(s.name),
                js(s.about),
                s.skip.as_deref().map(js).unwrap_or("null".into()),
                exits.iter().map(|e| js(e)).collect::<Vec<_>>().join(", ")
            );
            o.push_str(if i + 1 < self.specs.len() { ",\n" } else { "\n" });
        }
        o.push_str("  ],\n  \"results\": [\n");
        for (i, r) in self.rows.iter().enumerate() {
            let unit = wl.iter().find(|w| w.0 == r.workload).map(|w| w.2).unwrap_or("");
            let _ = write!(
                o,
                "    {{\"server\": {}, \"workload\": {}, \"unit\": {}, ",
                js(&r.server),
                js(&r.workload),
                js(unit)
            );
            match &r.status {
                Status::Skipped(why) => {
                    let _ = write!(o, "\"status\": \"skipped\", \"reason\": {}}}", js(why));
                }
                Status::Ok(m) => {
                    let ratio =
                        self.reference(&r.workload).map(|(_, v)| num(Some(m.value / v))).unwrap_or("null".into());
                    let _ = write!(
                        o,
                        "\"status\": \"ok\", \"value\": {}, \"ratio\": {}, \"p50_us\": {}, \"p99_us\": {}, \
                         \"server_cpu_us_per_op\": {}, \"server_user_us_per_op\": {}, \"server_sys_us_per_op\": {}, \"server_cpu_pct\": {}, \"gen_cpu_pct\": {}, \"other_cpu_pct\": {}, \"errors\": {}, \"note\": {}}}",
                        num(Some(m.value)),
                        ratio,
                        num(m.p50_us),
                        num(m.p99_us),
                        num(m.server_cpu_us),
                        num(m.server_user_us),
                        num(m.server_sys_us),
                        num(m.server_cpu_pct),
                        num(m.gen_cpu_pct),
                        num(m.other_cpu_pct),
                        m.errors,
                        js(&m.note)
                    );
                }
            }
            o.push_str(if i + 1 < self.rows.len() { ",\n" } else { "\n" });
        }
        o.push_str("  ]\n}\n");
        o
    }
}

fn num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "null".into(),
    }
}

fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn git_commit(root: &Path) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
