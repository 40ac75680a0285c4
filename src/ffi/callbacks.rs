//! The C callback table and the [`Handler`] that calls it.
use super::error::code_of;
use super::request::ws_request;
use crate::{ConnId, Error, Handler, Kind, LogLevel, Request, ServerHandle};
use std::ffi::{c_char, c_int, c_void, CString};

/// A message kind: WS_TEXT or WS_BINARY.
pub type ws_kind = u32;
/// UTF-8 text (validated when sent and when received).
pub const WS_TEXT: ws_kind = 1;
/// Arbitrary bytes.
pub const WS_BINARY: ws_kind = 2;

/// A log level: lower is more severe.
pub type ws_log_level = u32;
/// The server cannot do what it was asked (e.g. accept failed).
pub const WS_LOG_ERROR: ws_log_level = 1;
/// A client misbehaved or was refused (bad handshake, protocol error).
pub const WS_LOG_WARN: ws_log_level = 2;
/// Notable: connections dropped by timeouts or limits, listening address.
pub const WS_LOG_INFO: ws_log_level = 3;
/// Everything else.
pub const WS_LOG_DEBUG: ws_log_level = 4;

/// The events a server delivers. Every member may be NULL (event ignored).
/// The table is copied by `ws_server_new`.
///
/// Thread: callbacks run on the server's I/O threads (one thread, named
/// "wsserver-io", unless WS_OPT_THREADS raises it). For one connection they
/// run one at a time, in order: `on_open` first, `on_close` exactly once and
/// last (a connection refused by `on_open` gets no further event). Inside a
/// callback you may call `ws_server_send`, `ws_server_broadcast`,
/// `ws_server_disconnect`, `ws_server_queued_bytes` and `ws_server_close`.
/// Callbacks must not throw C++ exceptions or longjmp out. In event-queue
/// mode (WS_OPT_EVENT_QUEUE) none of them runs: the same events arrive
/// through `ws_server_poll`.
///
/// Growth: members are only ever appended. `ws_server_new` (the macro)
/// passes `sizeof(ws_callbacks)` of the header you compiled with, so a
/// program built against an older, shorter table keeps working; members
/// it does not know stay NULL. `ws_callbacks cb = {0};` then setting the
/// members you want is the intended use.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ws_callbacks {
    /// A client's handshake request arrived. `request` is valid only during
    /// the call (read it with `ws_request_*`). Return 0 to accept the
    /// connection, an HTTP status 400..599 to refuse it with that status
    /// (any other value refuses with 500), or WS_OPEN_DEFER to answer later
    /// with `ws_conn_accept` / `ws_conn_refuse` from any thread, within
    /// WS_OPT_HANDSHAKE_TIMEOUT_MS (else 503). During the call
    /// `ws_conn_add_header` adds headers to the answer, and
    /// `ws_conn_accept` (to choose the subprotocol) or `ws_conn_refuse*`
    /// answer at once, taking precedence over a return value of 0.
    /// Messages sent from here go out right after the handshake response.
    pub on_open: Option<unsafe extern "C" fn(user_data: *mut c_void, conn: u64, request: *const ws_request) -> c_int>,
    /// A whole message arrived. `data` (`len` bytes; for WS_TEXT valid UTF-8,
    /// not NUL-terminated) is valid only during the call.
    pub on_message:
        Option<unsafe extern "C" fn(user_data: *mut c_void, conn: u64, data: *const u8, len: usize, kind: ws_kind)>,
    /// The connection is gone; exactly once per opened connection, last.
    /// `code`: the peer's close code (1005 if its close frame had none), the
    /// code the server sent when it failed the connection (1002, 1007, 1009,
    /// 1008/1013), or 1006 when the TCP connection ended without a close
    /// handshake. `reason` (`reason_len` bytes of UTF-8, also NUL-terminated)
    /// is valid only during the call.
    pub on_close: Option<
        unsafe extern "C" fn(user_data: *mut c_void, conn: u64, code: u16, reason: *const c_char, reason_len: usize),
    >,
    /// Something went wrong on a connection (protocol violation, timeout,
    /// I/O error, send-queue overflow); `on_close` follows. `message` is
    /// valid only during the call.
    pub on_error: Option<
        unsafe extern "C" fn(user_data: *mut c_void, conn: u64, error: super::ws_result, message: *const c_char),
    >,
    /// A connection's send queue fell back under WS_OPT_SEND_QUEUE_LIMIT
    /// after a send returned WS_BACKPRESSURE: sending may resume.
    pub on_drain: Option<unsafe extern "C" fn(user_data: *mut c_void, conn: u64)>,
    /// A log line (failed handshakes, dropped connections, accept errors)
    /// at or above WS_OPT_LOG_LEVEL. The library never prints to stderr.
    /// `message` is valid only during the call. May also run on the thread
    /// calling `ws_server_listen`.
    pub on_log: Option<unsafe extern "C" fn(user_data: *mut c_void, level: ws_log_level, message: *const c_char)>,
    /// Added in 0.1 (after the first six): a plain HTTP request (no
    /// upgrade) that no static file or health path answered, when
    /// WS_OPT_HTTP_HANDLER is 1. `request` (method, path, query, headers,
    /// `ws_request_body`) is valid only during the call. Return an HTTP
    /// status (100..599) to answer now with it and no body, or 0 after
    /// answering with `ws_http_respond` — or to answer later, from any
    /// thread, within WS_OPT_HANDSHAKE_TIMEOUT_MS (else 503). NULL: 404.
    pub on_http: Option<unsafe extern "C" fn(user_data: *mut c_void, id: u64, request: *const ws_request) -> c_int>,
}

/// Returned by `on_open`: the host answers later (`ws_conn_accept`,
/// `ws_conn_refuse`).
pub const WS_OPEN_DEFER: c_int = 1;

/// The size of the first `ws_callbacks` (six members, on_open..on_log):
/// what the `ws_server_new` symbol reads, forever.
pub(crate) const WS_CALLBACKS_V1_SIZE: usize = 6 * std::mem::size_of::<usize>();

impl ws_callbacks {
    /// Copies the first `size` bytes' worth of whole members from `table`
    /// (NULL: none); members beyond stay NULL.
    ///
    /// # Safety
    /// `table` is NULL or points to at least `size` readable bytes.
    pub(crate) unsafe fn read(table: *const ws_callbacks, size: usize) -> ws_callbacks {
        // SAFETY: every member is an Option of a function pointer, for which
        // all-zero bytes are None.
        let mut out: ws_callbacks = unsafe { std::mem::zeroed() };
        if !table.is_null() {
            let member = std::mem::size_of::<usize>();
            let n = size.min(std::mem::size_of::<ws_callbacks>()) / member * member;
            // SAFETY: `n` is at most what the caller promised readable and at
            // most our table's size; a whole number of pointer-sized members.
            unsafe { std::ptr::copy_nonoverlapping(table as *const u8, &mut out as *mut ws_callbacks as *mut u8, n) };
        }
        out
    }
}

/// The host's callbacks and user data, as a [`Handler`].
pub(crate) struct CHandler {
    pub callbacks: ws_callbacks,
    pub user_data: *mut c_void,
}

// SAFETY: the header tells the host that callbacks run on the I/O threads
// and user_data is handed to them there; it is the host's to make safe.
unsafe impl Send for CHandler {}
unsafe impl Sync for CHandler {}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

pub(crate) fn kind_to_c(kind: Kind) -> ws_kind {
    match kind {
        Kind::Text => WS_TEXT,
        Kind::Binary => WS_BINARY,
    }
}

impl Handler for CHandler {
    fn on_open(&self, server: &ServerHandle, conn: ConnId, request: &Request) -> Result<(), u16> {
        let Some(f) = self.callbacks.on_open else { return Ok(()) };
        let req = ws_request::new(request);
        // SAFETY: a host callback with the pointers the header promises.
        match unsafe { f(self.user_data, conn, &req) } {
            0 => Ok(()),
            WS_OPEN_DEFER => server.defer(conn).or(Ok(())),
            s @ 400..=599 => Err(s as u16),
            _ => Err(500),
        }
    }

    fn on_message(&self, _server: &ServerHandle, conn: ConnId, data: &[u8], kind: Kind) {
        if let Some(f) = self.callbacks.on_message {
            // SAFETY: as above; `data` outlives the call.
            unsafe { f(self.user_data, conn, data.as_ptr(), data.len(), kind_to_c(kind)) }
        }
    }

    fn on_close(&self, _server: &ServerHandle, conn: ConnId, code: u16, reason: &str) {
        if let Some(f) = self.callbacks.on_close {
            let mut bytes = reason.as_bytes().to_vec();
            bytes.push(0);
            // SAFETY: as above; `bytes` is NUL-terminated and outlives the call.
            unsafe { f(self.user_data, conn, code, bytes.as_ptr() as *const c_char, reason.len()) }
        }
    }

    fn on_error(&self, _server: &ServerHandle, conn: ConnId, error: &Error) {
        if let Some(f) = self.callbacks.on_error {
            let msg = c_string(&error.to_string());
            // SAFETY: as above.
            unsafe { f(self.user_data, conn, code_of(error), msg.as_ptr()) }
        }
    }

    fn on_drain(&self, _server: &ServerHandle, conn: ConnId) {
        if let Some(f) = self.callbacks.on_drain {
            // SAFETY: as above.
            unsafe { f(self.user_data, conn) }
        }
    }

    fn on_http(&self, _server: &ServerHandle, id: ConnId, request: &Request) -> Option<u16> {
        let Some(f) = self.callbacks.on_http else { return Some(404) };
        let req = ws_request::new(request);
        // SAFETY: a host callback with the pointers the header promises.
        match unsafe { f(self.user_data, id, &req) } {
            0 => None,
            s @ 100..=599 => Some(s as u16),
            _ => Some(500),
        }
    }

    fn on_log(&self, level: LogLevel, message: &str) {
        if let Some(f) = self.callbacks.on_log {
            let msg = c_string(message);
            // SAFETY: as above.
            unsafe { f(self.user_data, level as ws_log_level, msg.as_ptr()) }
        }
    }
}
