//! `ws_event`: the event-queue delivery (WS_OPT_EVENT_QUEUE) — poll, the
//! event fd, and the events' C form.
use super::args::{out, run};
use super::callbacks::{kind_to_c, ws_kind};
use super::error::{code_of, fail, ws_result};
use super::panic::guard;
use super::request::ws_request;
use super::server::{server, ws_server};
use crate::{Error, Event, Polled, Request};
use std::ffi::{c_int, c_void};
use std::time::Duration;
use ws_result::*;

/// What a `ws_event` reports: one of the WS_EVENT_* values.
pub type ws_event_type = u32;
/// A client's handshake request (`request`). Unless WS_OPT_AUTO_ACCEPT is
/// on, answer with `ws_conn_accept` or `ws_conn_refuse` within
/// WS_OPT_HANDSHAKE_TIMEOUT_MS (else: 503, and a WS_EVENT_CLOSE follows).
pub const WS_EVENT_OPEN: ws_event_type = 1;
/// A whole message: `data`/`len`, `kind`.
pub const WS_EVENT_MESSAGE: ws_event_type = 2;
/// The connection is gone: `code` is the close code (as `on_close`),
/// `data`/`len` the reason. Exactly once per WS_EVENT_OPEN, last.
pub const WS_EVENT_CLOSE: ws_event_type = 3;
/// Something went wrong on the connection: `code` is a ws_result,
/// `data`/`len` the message. A WS_EVENT_CLOSE follows.
pub const WS_EVENT_ERROR: ws_event_type = 4;
/// The send queue fell back under WS_OPT_SEND_QUEUE_LIMIT after
/// WS_BACKPRESSURE: sending may resume.
pub const WS_EVENT_DRAIN: ws_event_type = 5;
/// A log line: `conn` 0, `code` the ws_log_level, `data`/`len` the text.
pub const WS_EVENT_LOG: ws_event_type = 6;
/// A plain HTTP request for the host (WS_OPT_HTTP_HANDLER): `conn` is its
/// id, `request` the request (method, path, headers, `ws_request_body`).
/// Answer with `ws_http_respond` within WS_OPT_HANDSHAKE_TIMEOUT_MS (else
/// 503). No other event comes for this id.
pub const WS_EVENT_HTTP: ws_event_type = 7;

/// One event, allocated by the library and owned by the caller of
/// `ws_server_poll` until `ws_event_free`. Read its members; never
/// allocate, copy or free one yourself (members may be appended in later
/// versions).
///
/// cbindgen:field-names=[type, conn, user_data, data, len, kind, code, request]
#[repr(C)]
pub struct ws_event {
    /// WS_EVENT_*.
    pub type_: ws_event_type,
    /// The connection; 0 for WS_EVENT_LOG.
    pub conn: u64,
    /// The connection's user data (`ws_conn_set_user_data`) when the event
    /// was taken; NULL for WS_EVENT_LOG or when never set.
    pub user_data: *mut c_void,
    /// The payload, close reason, or error/log text; never NULL, always
    /// followed by a NUL byte (not counted in `len`). Valid until
    /// `ws_event_free`.
    pub data: *const u8,
    /// Bytes at `data`.
    pub len: usize,
    /// WS_TEXT or WS_BINARY for WS_EVENT_MESSAGE; 0 otherwise.
    pub kind: ws_kind,
    /// WS_EVENT_CLOSE: the close code; WS_EVENT_ERROR: a ws_result;
    /// WS_EVENT_LOG: a ws_log_level; 0 otherwise.
    pub code: i32,
    /// WS_EVENT_OPEN and WS_EVENT_HTTP: the request (read with
    /// `ws_request_*`), valid until `ws_event_free`; NULL otherwise.
    pub request: *const ws_request,
}

/// The allocation behind a `ws_event *`: the public part first, then what
/// its pointers point into.
#[repr(C)]
struct Owned {
    public: ws_event,
    bytes: Vec<u8>,
    /// Boxed, so the pointers handed out stay put.
    open: Option<(Box<Request>, Box<ws_request>)>,
}

fn nul_terminated(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.push(0); // message payloads were allocated with room for it
    bytes
}

fn to_c(polled: Polled) -> *mut ws_event {
    let Polled { event, user_data } = polled;
    let conn = event.conn();
    let (type_, kind, code, bytes, request) = match event {
        Event::Open { request, .. } => (WS_EVENT_OPEN, 0, 0, Vec::new(), Some(request)),
        Event::Http { request, .. } => (WS_EVENT_HTTP, 0, 0, Vec::new(), Some(request)),
        Event::Message { data, kind, .. } => (WS_EVENT_MESSAGE, kind_to_c(kind), 0, data, None),
        Event::Close { code, reason, .. } => (WS_EVENT_CLOSE, 0, code as i32, reason.into_bytes(), None),
        Event::Error { error, .. } => (WS_EVENT_ERROR, 0, code_of(&error) as i32, error.to_string().into_bytes(), None),
        Event::Drain { .. } => (WS_EVENT_DRAIN, 0, 0, Vec::new(), None),
        Event::Log { level, message } => (WS_EVENT_LOG, 0, level as i32, message.into_bytes(), None),
    };
    let bytes = nul_terminated(bytes);
    let open = request.map(|r| {
        let r = Box::new(r);
        let c = Box::new(ws_request::new(&r));
        (r, c)
    });
    let public = ws_event {
        type_,
        conn,
        user_data: user_data as *mut c_void,
        data: bytes.as_ptr(),
        len: bytes.len() - 1,
        kind,
        code,
        request: open.as_ref().map_or(std::ptr::null(), |(_, c)| &**c as *const ws_request),
    };
    Box::into_raw(Box::new(Owned { public, bytes, open })) as *mut ws_event
}

/// Takes the next event (event-queue mode, WS_OPT_EVENT_QUEUE = 1).
/// `timeout_ms`: 0 returns at once, -1 waits as long as it takes, a
/// positive value waits at most that many milliseconds.
///
/// Returns WS_OK with `*out_event` set (yours until `ws_event_free`),
/// WS_ERR_TIMEOUT when no event came in time, WS_ERR_CLOSED when the server
/// is closed and every event has been taken (stop polling), WS_ERR_STATE
/// when not in event mode or not listening yet, WS_ERR_NULL,
/// WS_ERR_INVALID_ARGUMENT (timeout below -1).
///
/// Events of one connection come in order: WS_EVENT_OPEN first,
/// WS_EVENT_CLOSE exactly once and last. Thread: any, one poller at a
/// time (several pollers would each see part of a connection's events).
#[no_mangle]
pub unsafe extern "C" fn ws_server_poll(
    srv: *const ws_server,
    timeout_ms: i32,
    out_event: *mut *mut ws_event,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let out_event = out(out_event, "out_event")?;
        let timeout = match timeout_ms {
            -1 => None,
            t if t >= 0 => Some(Duration::from_millis(t as u64)),
            t => return Err(fail(Error::InvalidArgument(format!("timeout_ms {t}: use -1, 0 or a positive value")))),
        };
        match s.poll_event(timeout) {
            Ok(Some(polled)) => {
                *out_event = to_c(polled);
                Ok(WS_OK)
            }
            Ok(None) => {
                super::error::set_last_error("no event within the timeout");
                Err(WS_ERR_TIMEOUT)
            }
            Err(Error::Closed(_)) => {
                super::error::set_last_error("the server is closed and every event was taken");
                Err(WS_ERR_CLOSED)
            }
            Err(e) => Err(fail(e)),
        }
    })
}

/// Frees an event from `ws_server_poll`, and with it everything its
/// pointers point to. NULL is ignored. Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_event_free(event: *mut ws_event) {
    guard((), || {
        if event.is_null() {
            return;
        }
        // SAFETY: the header requires NULL or an event from ws_server_poll, freed once.
        let owned = unsafe { Box::from_raw(event as *mut Owned) };
        crate::pool::give(owned.bytes); // a message's buffer serves the next one
    })
}

/// Writes to `*out_fd` a file descriptor that is readable while events
/// wait (level-triggered: it stays readable until `ws_server_poll` has
/// taken the last one), for poll(), epoll, QSocketNotifier, asyncio
/// `add_reader`, GLib or libuv. It also becomes readable once the server is
/// closed, so the host polls the last events.
///
/// Ownership: the server's; do not read, write or close it. Valid until
/// `ws_server_free`. Errors: WS_ERR_NULL, WS_ERR_STATE (not in event mode,
/// or not listening yet). Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_server_event_fd(srv: *const ws_server, out_fd: *mut c_int) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let out_fd = out(out_fd, "out_fd")?;
        *out_fd = s.event_fd().map_err(fail)?;
        Ok(WS_OK)
    })
}
