//! The Redis broker the cross-server broadcast row runs on: Debian's
//! `redis-server`, started as a `procs::Server` (a free loopback port,
//! pinned beside the servers, killed when dropped), with no persistence.

use std::path::Path;
use std::process::Command;

use crate::procs::Launch;

/// Why the row cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    match Command::new("redis-server").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("redis-server not installed (Debian package redis-server; scripts/install-deps.sh)".into()),
    }
}

/// redis-server on `{port}`, its working directory `dir`; raw: ready once
/// it accepts a connection.
pub fn launch(dir: &Path) -> Launch {
    let argv = ["redis-server", "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"];
    Launch { argv: argv.iter().map(|a| a.to_string()).chain([dir.display().to_string()]).collect(), raw: true }
}
