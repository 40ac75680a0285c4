//! Starting, watching and stopping one server process, and reading its CPU
//! time and memory from /proc.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{Deflate, WsConn};

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// User and system CPU time of a process (all its threads), in seconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTimes {
    /// utime: the process's own code (and libraries).
    pub user: f64,
    /// stime: the kernel on its behalf (here mostly the loopback TCP stack).
    pub sys: f64,
}

impl CpuTimes {
    pub fn total(&self) -> f64 {
        self.user + self.sys
    }
}

/// The CPU times of /proc/`pid`/stat ("self": this process).
fn cpu_times(pid: &str) -> Option<CpuTimes> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after "(comm)" start with field 3 (state); utime is 14, stime 15.
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    let secs = |i: usize| Some(f.get(i)?.parse::<u64>().ok()? as f64 / clk_tck());
    Some(CpuTimes { user: secs(11)?, sys: secs(12)? })
}

/// VmRSS in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}

/// Busy CPU time of the whole machine (all CPUs, /proc/stat), in seconds.
fn machine_busy_seconds() -> f64 {
    let s = fs::read_to_string("/proc/stat").unwrap_or_default();
    // cpu user nice system idle iowait irq softirq steal ...
    let f: Vec<u64> =
        s.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    [0usize, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum::<u64>() as f64 / clk_tck()
}

/// CPU use of the server's processes, of this one and of the machine.
#[derive(Clone, Copy)]
pub struct CpuMark {
    at: Instant,
    server: CpuTimes,
    me: f64,
    machine: f64,
}

pub struct CpuDelta {
    pub wall: f64,
    /// Server CPU, user and system (`total()`: both).
    pub server: CpuTimes,
    pub me: f64,
    /// Busy time of everything else (other processes, interrupts): high
    /// means the figures of this window are noisy.
    pub other: f64,
}

impl CpuMark {
    pub fn now(pids: &[u32]) -> CpuMark {
        let server = (pids.iter().filter_map(|p| cpu_times(&p.to_string())))
            .fold(CpuTimes::default(), |a, t| CpuTimes { user: a.user + t.user, sys: a.sys + t.sys });
        let me = cpu_times("self").map_or(0.0, |t| t.total());
        CpuMark { at: Instant::now(), server, me, machine: machine_busy_seconds() }
    }

    pub fn since(&self, pids: &[u32]) -> CpuDelta {
        let b = CpuMark::now(pids);
        let server = CpuTimes { user: b.server.user - self.server.user, sys: b.server.sys - self.server.sys };
        let (wall, me) = ((b.at - self.at).as_secs_f64(), b.me - self.me);
        CpuDelta { wall, server, me, other: (b.machine - self.machine - server.total() - me).max(0.0) }
    }
}

/// A command for `argv`, pinned to `cpu` (through taskset) when given.
fn pinned(cpu: Option<usize>, argv: &[String]) -> Command {
    let mut cmd = Command::new(if cpu.is_some() { "taskset" } else { &argv[0] });
    if let Some(c) = cpu {
        cmd.arg("-c").arg(c.to_string()).arg(&argv[0]);
    }
    cmd.args(&argv[1..]);
    cmd
}

pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: PathBuf,
    /// Served over TLS (its launch takes the certificate, src/tls.rs).
    pub tls: bool,
}

/// How to start one server: argv with `{port}` in place of the port.
#[derive(Clone)]
pub struct Launch {
    pub argv: Vec<String>,
    pub raw: bool,
}

impl Server {
    /// Starts the server pinned to `cpu` (when given), waits up to `limit`
    /// until a client can connect (and, for WebSocket servers, complete a
    /// handshake; a server under valgrind starts slowly).
    pub async fn start(launch: &Launch, cpu: Option<usize>, log: PathBuf, limit: Duration) -> Result<Server, String> {
        let free = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()); // free a moment ago
        let port = free.map_err(|e| format!("no free port: {e}"))?.port();
        let argv: Vec<String> = launch.argv.iter().map(|a| a.replace("{port}", &port.to_string())).collect();
        // A TLS server: its argv takes the certificate.
        let tls = launch.argv.iter().any(|a| a.contains(crate::tls::CERT));
        let argv = if tls { crate::tls::with_certs(argv)? } else { argv };
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = pinned(cpu, &argv).stdin(Stdio::null()).stdout(out).stderr(err).spawn();
        let child = child.map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
        let (pid, addr) = (child.id(), SocketAddr::from(([127, 0, 0, 1], port)));
        let mut srv = Server { child, pid, addr, log, tls };
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = srv.child.try_wait() {
                return Err(format!("exited at start ({st}): {}", srv.log_tail()));
            }
            let probe = WsConn::dial(addr, None, launch.raw, Deflate::NotOffered, tls);
            if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(2), probe).await {
                drop(c);
                // Let the server forget the probe connection before we measure.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Ok(srv);
            }
            if Instant::now() > deadline {
                srv.kill();
                return Err(format!("not ready after {} s: {}", limit.as_secs(), srv.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Last non-empty line of the server's log, for error reports.
    pub fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let line = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)");
        let line: String = line.chars().take(160).collect();
        format!("{line} [log: {}]", self.log.display())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then up to `grace` for a clean exit, then SIGKILL. Returns
    /// how it ended, e.g. "exit 0" or "killed after SIGTERM timeout".
    pub async fn stop(mut self, grace: Duration) -> String {
        if let Ok(Some(st)) = self.child.try_wait() {
            return format!("had already exited ({st})");
        }
        // SAFETY: pid is our own child, not yet reaped.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code().map_or(format!("{st}"), |c| format!("exit {c}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        "killed after SIGTERM timeout".to_string()
    }
}

impl Drop for Server {
    /// Kills it if still running (std does not signal a child already reaped).
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pinned_command_runs_under_taskset() {
        let argv = ["srv".to_string(), "{port}".to_string()];
        let line = |c: std::process::Command| {
            [c.get_program()]
                .into_iter()
                .chain(c.get_args())
                .map(|a| a.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(line(super::pinned(Some(0), &argv)), ["taskset", "-c", "0", "srv", "{port}"]);
        assert_eq!(line(super::pinned(None, &argv)), ["srv", "{port}"]);
    }
}
