//! Shared helpers for the Rust integration tests: a recording handler and a
//! server started on a free loopback port.
#![allow(dead_code)]
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsserver::{Config, ConnId, Error, Handler, Kind, LogLevel, Request, Server, ServerHandle};

/// One event as the handler saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    Open(ConnId, String),
    Message(ConnId, Vec<u8>, Kind),
    Close(ConnId, u16, String),
    Error(ConnId, String),
    Drain(ConnId),
}

/// Records every event; echoes messages when `echo` is set.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<Ev>>,
    pub logs: Mutex<Vec<(LogLevel, String)>>,
    pub echo: bool,
}

impl Handler for Recorder {
    fn on_open(&self, _s: &ServerHandle, conn: ConnId, req: &Request) -> Result<(), u16> {
        self.events.lock().unwrap().push(Ev::Open(conn, req.path().to_string()));
        if req.path() == "/forbidden" {
            return Err(403);
        }
        Ok(())
    }
    fn on_message(&self, s: &ServerHandle, conn: ConnId, data: &[u8], kind: Kind) {
        self.events.lock().unwrap().push(Ev::Message(conn, data.to_vec(), kind));
        if self.echo {
            let _ = s.send(conn, data, kind);
        }
    }
    fn on_close(&self, _s: &ServerHandle, conn: ConnId, code: u16, reason: &str) {
        self.events.lock().unwrap().push(Ev::Close(conn, code, reason.to_string()));
    }
    fn on_error(&self, _s: &ServerHandle, conn: ConnId, e: &Error) {
        self.events.lock().unwrap().push(Ev::Error(conn, e.to_string()));
    }
    fn on_drain(&self, _s: &ServerHandle, conn: ConnId) {
        self.events.lock().unwrap().push(Ev::Drain(conn));
    }
    fn on_log(&self, level: LogLevel, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_string()));
    }
}

impl Recorder {
    pub fn snapshot(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }
    /// Waits up to 5 s for an event matching `f`.
    pub fn wait_for(&self, f: impl Fn(&Ev) -> bool) -> Ev {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(e) = self.snapshot().into_iter().find(|e| f(e)) {
                return e;
            }
            assert!(Instant::now() < deadline, "event not seen; have {:?}", self.snapshot());
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Starts a server on 127.0.0.1 with a free port.
pub fn start(config: Config, echo: bool) -> (Server, Arc<Recorder>, u16) {
    let rec = Arc::new(Recorder { echo, ..Default::default() });
    let server = Server::new(config, rec.clone());
    let addr = server.listen("127.0.0.1", 0).expect("listen");
    (server, rec, addr.port())
}
