//! Server options. Every default is one a public server can live with; the
//! C header repeats each default with its reason.
use crate::options::{Key, OptionSpec, OPTIONS};
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

/// Options, fixed once `listen` succeeds. The numeric ones, with their
/// ranges, defaults and the reasons for them, are described once in
/// [`OPTIONS`](crate::options) (`ws_option_info` in C); `Default` takes
/// them from there.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest message accepted from a client, in bytes (1009 above it).
    pub max_message_size: usize,
    /// Largest single frame accepted, in bytes (1009 above it).
    pub max_frame_size: usize,
    /// Open connections (including handshakes in progress) above which new
    /// clients get HTTP 503.
    pub max_connections: usize,
    /// A client must finish its opening handshake within this (TLS and, in
    /// event mode, the host's answer included).
    pub handshake_timeout: Duration,
    /// Send a ping after this long without data from the client; zero
    /// disables.
    pub ping_interval: Duration,
    /// Drop a connection that sent nothing (not even a pong) for this long;
    /// zero disables.
    pub idle_timeout: Duration,
    /// After sending a close frame, wait this long for the client's close
    /// before dropping the TCP connection.
    pub close_timeout: Duration,
    /// Queued outgoing bytes per connection at which a send reports
    /// backpressure (the message is still queued).
    pub send_queue_limit: usize,
    /// A send to a connection already at `send_queue_limit` that would take
    /// its queue past this is refused, and [`Config::overflow`] applies.
    /// A connection under `send_queue_limit` takes any message, so whatever
    /// the server accepts from a client can be echoed.
    pub send_queue_hard_limit: usize,
    /// What happens to a refused send.
    pub overflow: OverflowPolicy,
    /// Number of I/O threads running connections and callbacks. With more
    /// than one, connections are dealt out round-robin, each staying on its
    /// thread; different connections' callbacks may run concurrently.
    pub threads: usize,
    /// Subprotocols the server speaks, in its order of preference; the
    /// first one the client also offers is chosen. Default none.
    pub subprotocols: Vec<String>,
    /// Most verbose log level delivered to [`crate::Handler::on_log`].
    pub log_level: LogLevel,
    /// Origins allowed to open a WebSocket (e.g. `https://example.com`),
    /// compared ASCII-case-insensitively; others get 403. Empty (the
    /// default): any. A request without Origin (not a browser) passes.
    pub allowed_origins: Vec<String>,
    /// Paths that take WebSocket upgrades (e.g. `/chat`); others get 404.
    /// Empty (the default): every path.
    pub paths: Vec<String>,
    /// Serve plain HTTP GET/HEAD requests from this directory (canonical
    /// path; see [`Config::set_static_dir`]). Default none.
    pub static_dir: Option<std::path::PathBuf>,
    /// Answer GET on this path with 200 "ok" (a load balancer's health
    /// check). Default none.
    pub health_path: Option<String>,
    /// Hand plain HTTP requests nothing else answers to the host.
    pub http_handler: bool,
    /// Plain HTTP requests per keep-alive connection.
    pub http_max_requests: usize,
    /// How long a keep-alive HTTP connection may wait for its next request.
    pub http_idle_timeout: Duration,
    /// Largest plain HTTP request body.
    pub http_max_body: usize,
    /// Queue events for [`crate::ServerHandle::poll_event`] instead of
    /// calling the handler (which then gets nothing).
    pub event_queue: bool,
    /// Bytes of queued events at which the server stops reading clients.
    pub event_queue_bytes: usize,
    /// Queued events at which the server stops reading clients.
    pub event_queue_events: usize,
    /// In event mode, accept every handshake without waiting for
    /// [`crate::ServerHandle::accept`].
    pub auto_accept: bool,
    /// Accept permessage-deflate offers.
    pub deflate: bool,
    /// Keep compression contexts between messages (else no_context_takeover both ways).
    pub deflate_context: bool,
    /// zlib level, 1..=9.
    pub deflate_level: u32,
    /// Messages shorter than this go uncompressed.
    pub deflate_min_size: usize,
    /// Bytes held for all connections together (0: no budget).
    pub memory_budget: usize,
    /// Serve wss:// with this TLS configuration; `None` (the default)
    /// serves plain ws://. Replace it on a live server with
    /// [`crate::ServerHandle::reload_tls`].
    pub tls: Option<Tls>,
    /// Join a Redis backplane: topics reach the subscribers of every server
    /// on the same broker and channel prefix. `None` (the default): topics
    /// stay in this process.
    pub backplane: Option<crate::Backplane>,
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            max_message_size: 0,
            max_frame_size: 0,
            max_connections: 0,
            handshake_timeout: Duration::ZERO,
            ping_interval: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            close_timeout: Duration::ZERO,
            send_queue_limit: 0,
            send_queue_hard_limit: 0,
            overflow: OverflowPolicy::Drop,
            threads: 0,
            subprotocols: Vec::new(),
            log_level: LogLevel::Info,
            allowed_origins: Vec::new(),
            paths: Vec::new(),
            static_dir: None,
            health_path: None,
            http_handler: false,
            http_max_requests: 0,
            http_idle_timeout: Duration::ZERO,
            http_max_body: 0,
            event_queue: false,
            event_queue_bytes: 0,
            event_queue_events: 0,
            auto_accept: false,
            deflate: false,
            deflate_context: false,
            deflate_level: 0,
            deflate_min_size: 0,
            memory_budget: 0,
            tls: None,
            backplane: None,
        };
        for spec in OPTIONS {
            c.store(spec.key, spec.default);
        }
        c
    }
}

/// The description of option `id`, if there is one.
pub(crate) fn option_spec(id: u32) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|s| s.id == id)
}

impl Config {
    /// Sets numeric option `id` (a WS_OPT_* number) after checking `value`
    /// against its range; on error `self` is unchanged.
    pub fn set_option(&mut self, id: u32, value: u64) -> Result<(), Error> {
        let spec = option_spec(id).ok_or_else(|| Error::InvalidArgument(format!("unknown option {id}")))?;
        let allowed =
            if spec.only.is_empty() { (spec.min..=spec.max).contains(&value) } else { spec.only.contains(&value) };
        if !allowed {
            let range = match spec.only {
                [] => format!("{}..={}", spec.min, spec.max),
                only => only.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
            };
            return Err(Error::InvalidArgument(format!("{}: {value} is out of range ({range})", spec.name)));
        }
        self.store(spec.key, value);
        Ok(())
    }

    /// The value of numeric option `id`, as `set_option` takes it.
    pub fn option(&self, id: u32) -> Option<u64> {
        let ms = |d: Duration| d.as_millis() as u64;
        Some(match option_spec(id)?.key {
            Key::MaxMessageSize => self.max_message_size as u64,
            Key::MaxFrameSize => self.max_frame_size as u64,
            Key::MaxConnections => self.max_connections as u64,
            Key::HandshakeTimeout => ms(self.handshake_timeout),
            Key::PingInterval => ms(self.ping_interval),
            Key::IdleTimeout => ms(self.idle_timeout),
            Key::CloseTimeout => ms(self.close_timeout),
            Key::SendQueueLimit => self.send_queue_limit as u64,
            Key::SendQueueHardLimit => self.send_queue_hard_limit as u64,
            Key::Overflow => match self.overflow {
                OverflowPolicy::Drop => 0,
                OverflowPolicy::Close(code) => code as u64,
            },
            Key::Threads => self.threads as u64,
            Key::LogLevel => self.log_level as u64,
            Key::EventQueue => self.event_queue as u64,
            Key::EventQueueBytes => self.event_queue_bytes as u64,
            Key::EventQueueEvents => self.event_queue_events as u64,
            Key::AutoAccept => self.auto_accept as u64,
            Key::HttpHandler => self.http_handler as u64,
            Key::HttpMaxRequests => self.http_max_requests as u64,
            Key::HttpIdleTimeout => ms(self.http_idle_timeout),
            Key::HttpMaxBody => self.http_max_body as u64,
            Key::Deflate => self.deflate as u64,
            Key::DeflateContext => self.deflate_context as u64,
            Key::DeflateLevel => self.deflate_level as u64,
            Key::DeflateMinSize => self.deflate_min_size as u64,
            Key::MemoryBudget => self.memory_budget as u64,
        })
    }

    /// Serves static files from `dir`, which must be a readable directory
    /// (kept as its canonical path, so symlinks out of it can be told).
    pub fn set_static_dir(&mut self, dir: &str) -> Result<(), Error> {
        let canonical = std::fs::canonicalize(dir)
            .map_err(|e| Error::InvalidArgument(format!("static files directory '{dir}': {e}")))?;
        if !canonical.is_dir() {
            return Err(Error::InvalidArgument(format!("static files directory '{dir}' is not a directory")));
        }
        self.static_dir = Some(canonical);
        Ok(())
    }

    /// Whether plain HTTP requests are answered (else they get 400 as a
    /// bad upgrade).
    pub(crate) fn serves_http(&self) -> bool {
        self.static_dir.is_some() || self.health_path.is_some() || self.http_handler
    }

    /// The status a handshake is refused with by the path and origin
    /// rules, if any: 404 for a path not taking upgrades, 403 for an
    /// origin not allowed.
    pub(crate) fn refuses(&self, request: &crate::Request) -> Option<u16> {
        if !self.paths.is_empty() && !self.paths.iter().any(|p| p == request.path()) {
            return Some(404);
        }
        match request.header("Origin") {
            Some(o)
                if !self.allowed_origins.is_empty()
                    && !self.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(o.trim())) =>
            {
                Some(403)
            }
            _ => None,
        }
    }

    /// Stores a value already checked against its spec.
    fn store(&mut self, key: Key, v: u64) {
        let size = v as usize;
        let ms = Duration::from_millis(v);
        match key {
            Key::MaxMessageSize => self.max_message_size = size,
            Key::MaxFrameSize => self.max_frame_size = size,
            Key::MaxConnections => self.max_connections = size,
            Key::HandshakeTimeout => self.handshake_timeout = ms,
            Key::PingInterval => self.ping_interval = ms,
            Key::IdleTimeout => self.idle_timeout = ms,
            Key::CloseTimeout => self.close_timeout = ms,
            Key::SendQueueLimit => self.send_queue_limit = size,
            Key::SendQueueHardLimit => self.send_queue_hard_limit = size,
            Key::Overflow => {
                self.overflow = if v == 0 { OverflowPolicy::Drop } else { OverflowPolicy::Close(v as u16) }
            }
            Key::Threads => self.threads = size,
            Key::LogLevel => {
                self.log_level = match v {
                    1 => LogLevel::Error,
                    2 => LogLevel::Warn,
                    3 => LogLevel::Info,
                    _ => LogLevel::Debug,
                }
            }
            Key::EventQueue => self.event_queue = v != 0,
            Key::EventQueueBytes => self.event_queue_bytes = size,
            Key::EventQueueEvents => self.event_queue_events = size,
            Key::AutoAccept => self.auto_accept = v != 0,
            Key::HttpHandler => self.http_handler = v != 0,
            Key::HttpMaxRequests => self.http_max_requests = size,
            Key::HttpIdleTimeout => self.http_idle_timeout = ms,
            Key::HttpMaxBody => self.http_max_body = size,
            Key::Deflate => self.deflate = v != 0,
            Key::DeflateContext => self.deflate_context = v != 0,
            Key::DeflateLevel => self.deflate_level = v as u32,
            Key::DeflateMinSize => self.deflate_min_size = size,
            Key::MemoryBudget => self.memory_budget = size,
        }
    }

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
        if self.event_queue_bytes == 0 || self.event_queue_events == 0 {
            return bad("event_queue_bytes and event_queue_events must be at least 1");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_round_trips_its_default_and_refuses_out_of_range() {
        let c = Config::default();
        for spec in OPTIONS {
            assert_eq!(c.option(spec.id), Some(spec.default), "{}", spec.name);
            let mut d = Config::default();
            if spec.max < u64::MAX {
                assert!(d.set_option(spec.id, spec.max + 1).is_err(), "{} above max", spec.name);
            }
            if spec.min > 0 {
                assert!(d.set_option(spec.id, spec.min - 1).is_err(), "{} below min", spec.name);
            }
            d.set_option(spec.id, spec.max).expect(spec.name);
            assert_eq!(d.option(spec.id), Some(spec.max), "{}", spec.name);
        }
        assert!(Config::default().set_option(999, 1).is_err());
        assert!(Config::default().set_option(10, 1009).is_err(), "only 0, 1008, 1013");
        assert!(Config::default().validate().is_ok());
    }

    /// SECURITY.md's defaults table: every option it names shows the
    /// default the core has.
    #[test]
    fn security_md_defaults_match_the_core() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/SECURITY.md")).expect("SECURITY.md");
        let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `WS_OPT_")).collect();
        assert!(rows.len() >= 10, "SECURITY.md lost its defaults table");
        for row in rows {
            let name = row.trim_start_matches("| `").split('`').next().unwrap_or("");
            let spec =
                OPTIONS.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("SECURITY.md: no option {name}"));
            assert!(
                row.starts_with(&format!("| `{}` | {} |", spec.name, spec.shown)),
                "SECURITY.md row {row:?}: default is {}",
                spec.shown
            );
        }
    }

    /// The README's options table shows every option with its default and
    /// reason exactly as the core states them.
    #[test]
    fn readme_options_table_matches_the_core() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
        for spec in OPTIONS {
            let row = format!("| `{}` | {} | {} |", spec.name, spec.shown, spec.why);
            assert!(readme.contains(&row), "README.md lacks the options row:\n{row}");
        }
    }
}
