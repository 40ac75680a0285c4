//! wsserver through its Rust API: echo every message with the same kind, or
//! with `--broadcast`, relay every message to every client.
//!
//! Usage: wsserver_echo PORT [--broadcast]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wsserver::{Config, ConnId, Handler, Kind, Server, ServerHandle};

struct Echo;

impl Handler for Echo {
    fn on_message(&self, server: &ServerHandle, conn: ConnId, data: &[u8], kind: Kind) {
        let _ = server.send(conn, data, kind);
    }
}

struct Relay;

impl Handler for Relay {
    fn on_message(&self, server: &ServerHandle, _conn: ConnId, data: &[u8], kind: Kind) {
        let _ = server.broadcast(data, kind, None);
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("usage: wsserver_echo PORT [--broadcast]");
    let broadcast = args.any(|a| a == "--broadcast");
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let mut cfg = Config::default();
    cfg.max_connections = 1_000_000;
    let handler: Arc<dyn Handler> = if broadcast { Arc::new(Relay) } else { Arc::new(Echo) };
    let server = Server::new(cfg, handler);
    let addr = server.listen("127.0.0.1", port).expect("listen");
    println!("listening on ws://{addr}");
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.close(Duration::from_secs(1));
}
