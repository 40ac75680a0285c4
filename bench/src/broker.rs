//! The Redis broker the cross-server broadcast row runs on: Debian's
//! `redis-server`, started on a free loopback port (pinned beside the
//! servers), with no persistence, and killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::procs::free_port;

pub struct Broker {
    child: Child,
    pub pid: u32,
    pub port: u16,
}

/// Why the row cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    match Command::new("redis-server").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("redis-server not installed (Debian package redis-server; scripts/install-deps.sh)".into()),
    }
}

impl Broker {
    /// Starts it (on `cpu` when given), logging to `dir`/redis.log; ready
    /// once it answers PING.
    pub fn start(cpu: Option<usize>, dir: &Path) -> Result<Broker, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let mut cmd = crate::procs::pinned(cpu, &["redis-server".to_string()]);
        let log = dir.join("redis.log");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = cmd.spawn().map_err(|e| format!("cannot start redis-server: {e}"))?;
        let pid = child.id();
        let mut broker = Broker { child, pid, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !broker.pong() {
            if Instant::now() > deadline || matches!(broker.child.try_wait(), Ok(Some(_))) {
                return Err(format!("redis-server did not answer PING (log: {})", log.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(broker)
    }

    fn pong(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
