//! The one error type of the Rust API; the FFI maps each variant to a stable
//! `ws_result` number.
use std::fmt;

/// Everything that can go wrong in a call to the Rust API, or on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An argument is out of range or malformed; the message says which.
    InvalidArgument(String),
    /// The call is not allowed in the server's current state (option after
    /// listen, listen twice, use after close).
    State(String),
    /// The host given to `listen` is not an IP literal or `localhost`.
    BadHost(String),
    /// The address is already bound by another socket.
    AddrInUse(String),
    /// Any other operating-system error.
    Io(String),
    /// No connection with this id was ever opened by this server.
    NoSuchConn(u64),
    /// The connection existed but is closed or closing.
    Closed(u64),
    /// The connection's send queue is over its hard limit: the message was
    /// not queued.
    Dropped(u64),
    /// A text message is not valid UTF-8.
    InvalidUtf8,
    /// A close code the RFC forbids an endpoint to send.
    BadCloseCode(u16),
    /// A close reason longer than 123 bytes.
    ReasonTooLong(usize),
    /// The peer broke RFC 6455 (the connection was failed with 1002/1007).
    Protocol(String),
    /// The peer sent a frame or message over the configured limit (1009).
    TooBig(String),
    /// A handshake, idle or close timeout expired.
    Timeout(String),
    /// A TLS configuration or handshake error.
    Tls(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::State(m) => write!(f, "wrong state: {m}"),
            Error::BadHost(m) => write!(f, "bad host: {m}"),
            Error::AddrInUse(m) => write!(f, "address in use: {m}"),
            Error::Io(m) => write!(f, "I/O error: {m}"),
            Error::NoSuchConn(id) => write!(f, "no connection with id {id}"),
            Error::Closed(id) => write!(f, "connection {id} is closed"),
            Error::Dropped(id) => {
                write!(f, "connection {id} is over its send-queue hard limit; message dropped")
            }
            Error::InvalidUtf8 => write!(f, "text is not valid UTF-8"),
            Error::BadCloseCode(c) => write!(f, "close code {c} may not be sent"),
            Error::ReasonTooLong(n) => write!(f, "close reason is {n} bytes; at most 123 allowed"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::TooBig(m) => write!(f, "too big: {m}"),
            Error::Timeout(m) => write!(f, "timeout: {m}"),
            Error::Tls(m) => write!(f, "TLS: {m}"),
        }
    }
}

impl std::error::Error for Error {}
