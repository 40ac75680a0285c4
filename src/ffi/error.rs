//! Result codes, their names, and the per-thread last error message.
use crate::Error;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};

/// The result of every fallible call. Numbers are stable: new codes are
/// appended, retired ones stay reserved. Non-negative means success.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ws_result {
    /// Success.
    WS_OK = 0,
    /// Success: the message was queued, but the connection's send queue is
    /// now at or over its limit. Stop sending to it until `on_drain`.
    WS_BACKPRESSURE = 1,
    /// A required pointer argument was NULL.
    WS_ERR_NULL = -1,
    /// An argument is out of range or malformed (unknown option, bad kind,
    /// bad option value).
    WS_ERR_INVALID_ARGUMENT = -2,
    /// Not allowed in the server's current state (option after listen,
    /// listen twice, listen after close).
    WS_ERR_STATE = -3,
    /// The host is not an IPv4/IPv6 literal or "localhost".
    WS_ERR_BAD_HOST = -4,
    /// The address is already in use.
    WS_ERR_ADDR_IN_USE = -5,
    /// Another operating-system error.
    WS_ERR_IO = -6,
    /// No connection with this id was ever opened by this server.
    WS_ERR_NO_SUCH_CONN = -7,
    /// The connection is closed or closing: nothing more can be sent.
    WS_ERR_CLOSED = -8,
    /// Refused: the connection's send queue is at its limit and the message
    /// would take it past its hard limit. The message was not queued (see
    /// WS_OPT_OVERFLOW_POLICY).
    WS_ERR_DROPPED = -9,
    /// A text message or string is not valid UTF-8.
    WS_ERR_INVALID_UTF8 = -10,
    /// A close code an endpoint may not send (RFC 6455 §7.4).
    WS_ERR_BAD_CLOSE_CODE = -11,
    /// A close reason longer than 123 bytes.
    WS_ERR_REASON_TOO_LONG = -12,
    /// The client broke the protocol (given to `on_error`).
    WS_ERR_PROTOCOL = -13,
    /// The client sent a frame or message over the limit (`on_error`).
    WS_ERR_TOO_BIG = -14,
    /// A handshake, idle or close timeout expired (`on_error`).
    WS_ERR_TIMEOUT = -15,
    /// A TLS configuration or handshake error.
    WS_ERR_TLS = -16,
    /// An internal error (a panic caught at the boundary): please report it.
    WS_ERR_PANIC = -17,
}

use ws_result::*;

const NAMES: &[(ws_result, &str)] = &[
    (WS_OK, "WS_OK\0"),
    (WS_BACKPRESSURE, "WS_BACKPRESSURE\0"),
    (WS_ERR_NULL, "WS_ERR_NULL\0"),
    (WS_ERR_INVALID_ARGUMENT, "WS_ERR_INVALID_ARGUMENT\0"),
    (WS_ERR_STATE, "WS_ERR_STATE\0"),
    (WS_ERR_BAD_HOST, "WS_ERR_BAD_HOST\0"),
    (WS_ERR_ADDR_IN_USE, "WS_ERR_ADDR_IN_USE\0"),
    (WS_ERR_IO, "WS_ERR_IO\0"),
    (WS_ERR_NO_SUCH_CONN, "WS_ERR_NO_SUCH_CONN\0"),
    (WS_ERR_CLOSED, "WS_ERR_CLOSED\0"),
    (WS_ERR_DROPPED, "WS_ERR_DROPPED\0"),
    (WS_ERR_INVALID_UTF8, "WS_ERR_INVALID_UTF8\0"),
    (WS_ERR_BAD_CLOSE_CODE, "WS_ERR_BAD_CLOSE_CODE\0"),
    (WS_ERR_REASON_TOO_LONG, "WS_ERR_REASON_TOO_LONG\0"),
    (WS_ERR_PROTOCOL, "WS_ERR_PROTOCOL\0"),
    (WS_ERR_TOO_BIG, "WS_ERR_TOO_BIG\0"),
    (WS_ERR_TIMEOUT, "WS_ERR_TIMEOUT\0"),
    (WS_ERR_TLS, "WS_ERR_TLS\0"),
    (WS_ERR_PANIC, "WS_ERR_PANIC\0"),
];

/// The code for a Rust API error.
pub(crate) fn code_of(e: &Error) -> ws_result {
    match e {
        Error::InvalidArgument(_) => WS_ERR_INVALID_ARGUMENT,
        Error::State(_) => WS_ERR_STATE,
        Error::BadHost(_) => WS_ERR_BAD_HOST,
        Error::AddrInUse(_) => WS_ERR_ADDR_IN_USE,
        Error::Io(_) => WS_ERR_IO,
        Error::NoSuchConn(_) => WS_ERR_NO_SUCH_CONN,
        Error::Closed(_) => WS_ERR_CLOSED,
        Error::Dropped(_) => WS_ERR_DROPPED,
        Error::InvalidUtf8 => WS_ERR_INVALID_UTF8,
        Error::BadCloseCode(_) => WS_ERR_BAD_CLOSE_CODE,
        Error::ReasonTooLong(_) => WS_ERR_REASON_TOO_LONG,
        Error::Protocol(_) => WS_ERR_PROTOCOL,
        Error::TooBig(_) => WS_ERR_TOO_BIG,
        Error::Timeout(_) => WS_ERR_TIMEOUT,
        Error::Tls(_) => WS_ERR_TLS,
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Records `e` and returns its code.
pub(crate) fn fail(e: Error) -> ws_result {
    set_last_error(&e.to_string());
    code_of(&e)
}

/// WS_OK for a success; for a failure, records it and returns its code.
pub(crate) fn done<T>(r: Result<T, Error>) -> Result<ws_result, ws_result> {
    r.map(|_| ws_result::WS_OK).map_err(fail)
}

/// Records a NULL-argument failure.
pub(crate) fn null(what: &str) -> ws_result {
    set_last_error(&format!("{what} must not be NULL"));
    WS_ERR_NULL
}

/// The message of the last call that failed on this thread ("" if none).
///
/// Ownership: the string belongs to the library and stays valid until the
/// next wsserver call on the same thread. Thread: any; each thread has its
/// own. Never NULL.
#[no_mangle]
pub extern "C" fn ws_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The name of a result code, e.g. "WS_ERR_CLOSED"; "WS_UNKNOWN" for a
/// number that is not a code.
///
/// Ownership: a static string, never freed, never NULL. Thread: any.
#[no_mangle]
pub extern "C" fn ws_result_name(result: c_int) -> *const c_char {
    let name = NAMES.iter().find(|(c, _)| *c as c_int == result).map(|(_, n)| *n).unwrap_or("WS_UNKNOWN\0");
    name.as_ptr() as *const c_char
}

/// The library version, e.g. "0.1.0".
///
/// Ownership: a static string, never freed, never NULL. Thread: any.
#[no_mangle]
pub extern "C" fn ws_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}
