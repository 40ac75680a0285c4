//! Server options. Every default is one a public server can live with; the
//! C header repeats each default with its reason.
use crate::{Error, LogLevel, Tls};
use std::time::Duration;

/// What a send does when it would take a connection past its hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Refuse the message ([`Error::Dropped`]); the connection stays open.
    Drop,
    /// Refuse the message and close the connection with this code
    /// (1008 policy violation or 1013 try again later).
    Close(u16),
}

/// Options, fixed once `listen` succeeds.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest message accepted from a client, in bytes; bigger ones close
    /// the connection with 1009. Default 1 MiB: enough for chat and JSON,
    /// small enough that a client cannot pin much memory.
    pub max_message_size: usize,
    /// Largest single frame accepted, in bytes (1009 above it). Default 1 MiB.
    pub max_frame_size: usize,
    /// Open connections (including handshakes in progress) above which new
    /// clients get HTTP 503. Default 10,000: above the usual fd limit's reach.
    pub max_connections: usize,
    /// A client must finish its opening handshake within this. Default 10 s:
    /// slow or silent clients cannot hold a slot.
    pub handshake_timeout: Duration,
    /// Send a ping after this long without data from the client; zero
    /// disables. Default 30 s: keeps NATs and load balancers open.
    pub ping_interval: Duration,
    /// Drop a connection that sent nothing (not even a pong) for this long;
    /// zero disables. Default 75 s: two missed pings is a dead peer.
    pub idle_timeout: Duration,
    /// After sending a close frame, wait this long for the client's close
    /// before dropping the TCP connection. Default 5 s.
    pub close_timeout: Duration,
    /// Queued outgoing bytes per connection above which a send reports
    /// backpressure (the message is still queued). Default 64 KiB: enough
    /// for bursts, small enough for 100k clients.
    pub send_queue_limit: usize,
    /// Queued outgoing bytes per connection that a send may never exceed;
    /// past it [`Config::overflow`] applies. Default 1 MiB.
    pub send_queue_hard_limit: usize,
    /// What happens at the hard limit. Default [`OverflowPolicy::Drop`].
    pub overflow: OverflowPolicy,
    /// Number of I/O threads running connections and callbacks. Default 1:
    /// callbacks never run concurrently, which is what most C hosts expect.
    /// With more, connections are dealt out round-robin, each staying on
    /// its thread; different connections' callbacks may run concurrently.
    pub threads: usize,
    /// Subprotocols the server speaks, in its order of preference; the
    /// first one the client also offers is chosen. Default none.
    pub subprotocols: Vec<String>,
    /// Most verbose log level delivered to [`crate::Handler::on_log`].
    /// Default [`LogLevel::Info`].
    pub log_level: LogLevel,
    /// Serve wss:// with this TLS configuration; `None` (the default)
    /// serves plain ws://. Replace it on a live server with
    /// [`crate::ServerHandle::reload_tls`].
    pub tls: Option<Tls>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 1 << 20,
            max_frame_size: 1 << 20,
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            close_timeout: Duration::from_secs(5),
            send_queue_limit: 64 << 10,
            send_queue_hard_limit: 1 << 20,
            overflow: OverflowPolicy::Drop,
            threads: 1,
            subprotocols: Vec::new(),
            log_level: LogLevel::Info,
            tls: None,
        }
    }
}

impl Config {
    /// Checks that the options make sense together; `listen` calls it.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::InvalidArgument(m.to_string()));
        if self.max_message_size == 0 || self.max_frame_size == 0 {
            return bad("max_message_size and max_frame_size must be at least 1");
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if self.handshake_timeout.is_zero() || self.close_timeout.is_zero() {
            return bad("handshake_timeout and close_timeout must be positive");
        }
        if self.send_queue_limit == 0 || self.send_queue_hard_limit < self.send_queue_limit {
            return bad("send_queue_limit must be at least 1 and at most send_queue_hard_limit");
        }
        if let OverflowPolicy::Close(code) = self.overflow {
            if code != 1008 && code != 1013 {
                return bad("overflow close code must be 1008 or 1013");
            }
        }
        if self.threads == 0 || self.threads > 256 {
            return bad("threads must be between 1 and 256");
        }
        self.subprotocols.iter().try_for_each(|p| check_subprotocol(p))
    }
}

/// A subprotocol name must be a non-empty HTTP token (RFC 6455 §4.1).
pub(crate) fn check_subprotocol(name: &str) -> Result<(), Error> {
    if name.is_empty() || !name.bytes().all(crate::handshake::is_token_byte) {
        return Err(Error::InvalidArgument(format!("subprotocol '{name}' is not a non-empty HTTP token")));
    }
    Ok(())
}
