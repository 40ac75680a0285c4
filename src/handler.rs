//! The events a server delivers to its host.
use crate::{Error, Request, ServerHandle};

/// A connection id: unique for the life of one server, never reused, never 0.
pub type ConnId = u64;

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text (validated in both directions).
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// Severity of a log line; lower is more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// The server cannot do what it was asked (accept failed, etc.).
    Error = 1,
    /// A client misbehaved or was refused (bad handshake, protocol error).
    Warn = 2,
    /// Normal but notable: connections dropped by timeouts or limits.
    Info = 3,
    /// Everything else.
    Debug = 4,
}

/// Receives a server's events. Methods run on the server's I/O threads (one
/// by default); for one connection they run one at a time and in order:
/// `on_open` first, `on_close` exactly once and last. Every method may call
/// back into the [`ServerHandle`] (send, broadcast, disconnect, close).
pub trait Handler: Send + Sync + 'static {
    /// A client finished its handshake request. Return `Ok(())` to accept
    /// it, or `Err(status)` (400..=599) to refuse it with that HTTP status;
    /// a refused connection gets no further events. Messages sent from here
    /// are delivered right after the handshake response.
    fn on_open(&self, server: &ServerHandle, conn: ConnId, request: &Request) -> Result<(), u16> {
        let _ = (server, conn, request);
        Ok(())
    }
    /// A whole message arrived. `data` is valid only during the call.
    fn on_message(&self, server: &ServerHandle, conn: ConnId, data: &[u8], kind: Kind) {
        let _ = (server, conn, data, kind);
    }
    /// The connection is gone. `code` is the peer's close code (1005 when its
    /// close frame had none), the code the server sent when it failed the
    /// connection (1002, 1007, 1009, 1008/1013), or 1006 when the TCP
    /// connection ended without a close handshake.
    fn on_close(&self, server: &ServerHandle, conn: ConnId, code: u16, reason: &str) {
        let _ = (server, conn, code, reason);
    }
    /// Something went wrong on a connection; `on_close` follows.
    fn on_error(&self, server: &ServerHandle, conn: ConnId, error: &Error) {
        let _ = (server, conn, error);
    }
    /// A connection's send queue fell back under its limit after a send
    /// reported backpressure: sending may resume.
    fn on_drain(&self, server: &ServerHandle, conn: ConnId) {
        let _ = (server, conn);
    }
    /// A plain HTTP request (no upgrade) that no static file or health
    /// path answered, with `http_handler` on. Return `Some(status)` to
    /// answer now with that status and no body, or `None` after answering
    /// (or to answer later, from any thread, within the handshake timeout)
    /// with [`ServerHandle::respond`]. Headers may be added with
    /// [`ServerHandle::add_answer_header`]. Default: 404.
    fn on_http(&self, server: &ServerHandle, id: ConnId, request: &Request) -> Option<u16> {
        let _ = (server, id, request);
        Some(404)
    }
    /// A log line for the host (failed handshakes, dropped connections...).
    /// The library never prints to stderr itself.
    fn on_log(&self, level: LogLevel, message: &str) {
        let _ = (level, message);
    }
}
