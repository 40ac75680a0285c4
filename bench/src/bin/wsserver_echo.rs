//! wsserver through its Rust API: echo, or with `--broadcast` every text
//! message published to the topic every client joined, except to itself.
//!
//! Usage: wsserver_echo PORT [--broadcast]

use std::sync::Arc;
use std::time::Duration;

#[path = "../sock.rs"]
#[allow(dead_code)] // the socket calls are raw_echo's
mod sock;

use wsserver::{Config, ConnId, Handler, Kind, Request, Server, ServerHandle};

struct Echo;

impl Handler for Echo {
    fn on_message(&self, server: &ServerHandle, conn: ConnId, data: &[u8], kind: Kind) {
        let _ = server.send(conn, data, kind);
    }
}

/// The topic every client joins in broadcast mode.
const TOPIC: &str = "all";

struct Relay;

impl Handler for Relay {
    fn on_open(&self, server: &ServerHandle, conn: ConnId, _request: &Request) -> Result<(), u16> {
        if let Err(e) = server.subscribe(conn, TOPIC) {
            eprintln!("wsserver_echo: subscribe {conn:?}: {e}");
        }
        Ok(())
    }

    fn on_message(&self, server: &ServerHandle, conn: ConnId, data: &[u8], kind: Kind) {
        if kind == Kind::Text {
            let _ = server.publish(TOPIC, data, kind, Some(conn));
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("usage: wsserver_echo PORT [--broadcast]");
    let broadcast = args.any(|a| a == "--broadcast");
    sock::stopped();
    let cfg = Config { max_connections: 1_000_000, ..Config::default() };
    let handler: Arc<dyn Handler> = if broadcast { Arc::new(Relay) } else { Arc::new(Echo) };
    let server = Server::new(cfg, handler);
    let addr = server.listen("127.0.0.1", port).expect("listen");
    println!("listening on ws://{addr}");
    while !sock::stopped() {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.close(Duration::from_secs(1));
}
