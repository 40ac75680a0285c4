//! `ws_server`: create, configure, listen, send, close, free.
use super::args::{bytes, free_boxed, opt_str, out, run, str_arg};
use super::callbacks::{ws_callbacks, ws_kind, CHandler, WS_BINARY, WS_CALLBACKS_V1_SIZE, WS_TEXT};
use super::error::{done, fail, null, ws_result};
use super::panic::guard;
use super::tls::{build as build_tls, ws_tls_config};
use crate::options::{OptionSpec, OPTIONS};
use crate::{Config, Error, Kind, SendStatus, Server, Tls};
use parking_lot::Mutex;
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;
use ws_result::*;

/// A WebSocket server. Opaque; create with `ws_server_new`, destroy with
/// `ws_server_free`.
pub struct ws_server {
    server: Server,
    /// TLS staged before listen: (enabled, configuration).
    tls: Mutex<(bool, Option<Tls>)>,
}

/// An option id for `ws_server_set_option`: one of the WS_OPT_* numbers
/// defined above (each with its default, range and the reason for the
/// default; `ws_option_info` gives the same at run time).
pub type ws_option = u32;

/// Borrows the `ws_server` behind `srv`, or fails with WS_ERR_NULL.
fn wrapper<'a>(srv: *const ws_server) -> Result<&'a ws_server, ws_result> {
    // SAFETY: the header requires a pointer from ws_server_new, not yet freed.
    unsafe { srv.as_ref() }.ok_or_else(|| null("srv"))
}

/// Borrows the server behind `srv`, or fails with WS_ERR_NULL.
pub(crate) fn server<'a>(srv: *const ws_server) -> Result<&'a Server, ws_result> {
    wrapper(srv).map(|w| &w.server)
}

pub(crate) fn kind(k: ws_kind) -> Result<Kind, ws_result> {
    match k {
        WS_TEXT => Ok(Kind::Text),
        WS_BINARY => Ok(Kind::Binary),
        other => Err(bad_kind(other)),
    }
}

// The failures below are out of line (cold): formatting their message
// inline gave every send the stack frame it needs.

#[cold]
fn bad_kind(k: ws_kind) -> ws_result {
    fail(Error::InvalidArgument(format!("kind {k} is not WS_TEXT or WS_BINARY")))
}

fn status(r: Result<SendStatus, Error>) -> ws_result {
    match r {
        Ok(SendStatus::Queued) => WS_OK,
        Ok(SendStatus::Backpressure) => WS_BACKPRESSURE,
        Err(e) => failed(e),
    }
}

#[cold]
fn failed(e: Error) -> ws_result {
    fail(e)
}

/// Creates a server (not yet listening) that reports events through
/// `callbacks`, passing `user_data` back to each.
///
/// Programs compiled against this header reach `ws_server_new_sized`
/// through the `ws_server_new` macro, which passes `sizeof(ws_callbacks)`;
/// this symbol (for programs built against the first header, and for
/// foreign-function callers) reads only the six original members, on_open
/// to on_log. Ownership, thread and result: as `ws_server_new_sized`.
#[no_mangle]
pub unsafe extern "C" fn ws_server_new(callbacks: *const ws_callbacks, user_data: *mut c_void) -> *mut ws_server {
    // SAFETY: as the caller promises for ws_server_new_sized.
    unsafe { ws_server_new_sized(callbacks, WS_CALLBACKS_V1_SIZE, user_data) }
}

/// Creates a server (not yet listening) that reports events through
/// `callbacks`, a table of `callbacks_size` bytes (`sizeof(ws_callbacks)`
/// of the header the caller was compiled with): members past that size,
/// added by later versions, stay NULL, so old programs keep working as the
/// table grows. Use the `ws_server_new(cb, user_data)` macro.
///
/// Ownership: `callbacks` is copied (NULL means no callbacks); `user_data`
/// is not touched by the library, and must stay valid until `ws_server_free`
/// returns. The caller owns the result and frees it with `ws_server_free`.
/// Thread: any. Returns NULL only on an internal error (see
/// `ws_last_error`).
#[no_mangle]
pub unsafe extern "C" fn ws_server_new_sized(
    callbacks: *const ws_callbacks,
    callbacks_size: usize,
    user_data: *mut c_void,
) -> *mut ws_server {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or a table of `callbacks_size` bytes.
        let callbacks = unsafe { ws_callbacks::read(callbacks, callbacks_size) };
        let handler = Arc::new(CHandler { callbacks, user_data });
        Box::into_raw(Box::new(ws_server {
            server: Server::new(Config::default(), handler),
            tls: Mutex::new((false, None)),
        }))
    })
}

/// Closes the server (as `ws_server_close` with a 1000 ms grace, if not
/// closed yet) and frees it. NULL is ignored.
///
/// Ownership: `srv` is invalid afterwards. Thread: any thread but must not
/// race with other calls on `srv`. Called from inside one of this server's
/// callbacks, the close finishes on a background thread after the callback
/// returns (the remaining `on_close` events still arrive).
#[no_mangle]
pub unsafe extern "C" fn ws_server_free(srv: *mut ws_server) {
    // SAFETY: the header requires NULL or a pointer from ws_server_new, freed once.
    guard((), || unsafe { free_boxed(srv) })
}

/// Sets one option (WS_OPT_*), before `ws_server_listen`. Durations are in
/// milliseconds.
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (unknown option, value out
/// of range: the message gives the range), WS_ERR_STATE (after listen).
/// Thread: any, not concurrently with `ws_server_listen`.
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_option(srv: *mut ws_server, option: ws_option, value: u64) -> ws_result {
    run(|| {
        let s = server(srv)?;
        s.update_config(|c| c.set_option(option, value)).map_err(fail)?.map_err(fail)?;
        Ok(WS_OK)
    })
}

/// Writes to `*out_value` the value of `option` in force (after listen) or
/// staged (before).
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (unknown option). Thread:
/// any.
#[no_mangle]
pub unsafe extern "C" fn ws_server_get_option(
    srv: *const ws_server,
    option: ws_option,
    out_value: *mut u64,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let out_value = out(out_value, "out_value")?;
        let unknown = || fail(Error::InvalidArgument(format!("unknown option {option}")));
        *out_value = s.option(option).ok_or_else(unknown)?;
        Ok(WS_OK)
    })
}

/// Describes `option`: its WS_OPT_* name, default, smallest and largest
/// value, and one line saying why the default is what it is. The library
/// states these once; bindings take their defaults from here.
///
/// Ownership: the strings are static (never freed, valid forever). Every
/// out pointer may be NULL (that item is skipped). Errors:
/// WS_ERR_INVALID_ARGUMENT (unknown option). Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_option_info(
    option: ws_option,
    out_name: *mut *const c_char,
    out_default: *mut u64,
    out_min: *mut u64,
    out_max: *mut u64,
    out_why: *mut *const c_char,
) -> ws_result {
    run(|| {
        let spec = crate::config::option_spec(option)
            .ok_or_else(|| fail(Error::InvalidArgument(format!("unknown option {option}"))))?;
        let (name, why) = option_c_strings(spec);
        // SAFETY: each pointer is NULL or writable, as the header requires.
        unsafe {
            if let Some(p) = out_name.as_mut() {
                *p = name;
            }
            if let Some(p) = out_default.as_mut() {
                *p = spec.default;
            }
            if let Some(p) = out_min.as_mut() {
                *p = spec.min;
            }
            if let Some(p) = out_max.as_mut() {
                *p = spec.max;
            }
            if let Some(p) = out_why.as_mut() {
                *p = why;
            }
        }
        Ok(WS_OK)
    })
}

/// The name and reason of `spec` as C strings, made once and kept forever.
fn option_c_strings(spec: &'static OptionSpec) -> (*const c_char, *const c_char) {
    static STRINGS: OnceLock<Vec<(CString, CString)>> = OnceLock::new();
    let all = STRINGS.get_or_init(|| {
        OPTIONS
            .iter()
            .map(|o| (CString::new(o.name).unwrap_or_default(), CString::new(o.why).unwrap_or_default()))
            .collect()
    });
    let i = OPTIONS.iter().position(|o| o.id == spec.id).unwrap_or(0);
    (all[i].0.as_ptr(), all[i].1.as_ptr())
}

/// Sets the subprotocols the server speaks, in its order of preference; the
/// first one the client also offers is chosen (see
/// `ws_request_subprotocol`). Before `ws_server_listen`.
///
/// Ownership: `names` (`count` NUL-terminated strings) is copied. NULL
/// `names` is allowed only with `count` 0 (clears the list). Errors:
/// WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (a name that is not an HTTP
/// token), WS_ERR_STATE. Thread: any, not concurrently with listen.
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_subprotocols(
    srv: *mut ws_server,
    names: *const *const c_char,
    count: usize,
) -> ws_result {
    // SAFETY: as the caller promises.
    unsafe {
        set_list(srv, names, count, "a subprotocol name", crate::config::check_subprotocol, |c, l| c.subprotocols = l)
    }
}

/// Sets the origins allowed to open a WebSocket (e.g.
/// "https://example.com"; compared ignoring ASCII case): a handshake whose
/// Origin header is another gets 403. A request without Origin (not from
/// a browser) passes. `count` 0 (the default) allows every origin. Before
/// `ws_server_listen`. Ownership, errors and thread: as
/// `ws_server_set_subprotocols` (WS_ERR_INVALID_ARGUMENT for an empty
/// name).
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_allowed_origins(
    srv: *mut ws_server,
    origins: *const *const c_char,
    count: usize,
) -> ws_result {
    // SAFETY: as the caller promises.
    unsafe { set_list(srv, origins, count, "an origin", non_empty, |c, l| c.allowed_origins = l) }
}

/// Sets the paths that take WebSocket upgrades (e.g. "/chat", compared
/// exactly, without the query): an upgrade to any other path gets 404.
/// `count` 0 (the default) takes upgrades on every path. Before
/// `ws_server_listen`. Ownership, errors and thread: as
/// `ws_server_set_subprotocols` (WS_ERR_INVALID_ARGUMENT for a path not
/// starting with '/').
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_paths(
    srv: *mut ws_server,
    paths: *const *const c_char,
    count: usize,
) -> ws_result {
    let check = |p: &str| match p.starts_with('/') {
        true => Ok(()),
        false => Err(Error::InvalidArgument(format!("path '{p}' does not start with '/'"))),
    };
    // SAFETY: as the caller promises.
    unsafe { set_list(srv, paths, count, "a path", check, |c, l| c.paths = l) }
}

/// Serves plain HTTP GET and HEAD requests from directory `dir`: content
/// types by extension, ETag / If-None-Match (304), `index.html` for a
/// directory; no request leaves `dir` (`..`, encoded dots or slashes, NUL,
/// symlinks out: 404). NULL turns it off. Before `ws_server_listen`.
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (not a readable directory),
/// WS_ERR_INVALID_UTF8, WS_ERR_STATE. Ownership: `dir` is copied. Thread:
/// any, not concurrently with listen.
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_static_dir(srv: *mut ws_server, dir: *const c_char) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let dir = opt_str(dir, "dir", WS_ERR_INVALID_UTF8)?;
        let r = s.update_config(|c| match dir {
            Some(d) => c.set_static_dir(d),
            None => {
                c.static_dir = None;
                Ok(())
            }
        });
        done(r.and_then(|r| r))
    })
}

/// Answers GET and HEAD `path` (e.g. "/healthz") with 200 "ok" (other
/// methods: 405), for load balancers;
/// NULL turns it off. Before `ws_server_listen`. Errors: WS_ERR_NULL,
/// WS_ERR_INVALID_ARGUMENT (not starting with '/'), WS_ERR_INVALID_UTF8,
/// WS_ERR_STATE. Ownership: copied. Thread: any, not concurrently with
/// listen.
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_health_path(srv: *mut ws_server, path: *const c_char) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let path = opt_str(path, "path", WS_ERR_INVALID_UTF8)?;
        if path.is_some_and(|p| !p.starts_with('/')) {
            return Err(fail(Error::InvalidArgument("the health path must start with '/'".into())));
        }
        done(s.update_config(|c| c.health_path = path.map(str::to_string)))
    })
}

fn non_empty(s: &str) -> Result<(), Error> {
    match s.is_empty() {
        true => Err(Error::InvalidArgument("an empty string is not allowed here".into())),
        false => Ok(()),
    }
}

/// Reads `count` C strings at `items`, checks each, and stores the list
/// with `store` (before listen).
///
/// # Safety
/// `items` is NULL (with `count` 0) or points to `count` string pointers.
unsafe fn set_list(
    srv: *mut ws_server,
    items: *const *const c_char,
    count: usize,
    what: &str,
    check: impl Fn(&str) -> Result<(), Error>,
    store: impl FnOnce(&mut Config, Vec<String>),
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        if items.is_null() && count > 0 {
            return Err(null("the list"));
        }
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: the caller passes `count` string pointers.
            let item = str_arg(unsafe { *items.add(i) }, what, WS_ERR_INVALID_ARGUMENT)?;
            check(item).map_err(fail)?;
            list.push(item.to_string());
        }
        done(s.update_config(|c| store(c, list)))
    })
}

/// Binds `host:port` and starts serving; returns once the socket listens,
/// so address errors come back from this call. `host`: an IPv4 or IPv6
/// literal ("0.0.0.0", "::", "[::1]") or "localhost" (127.0.0.1). Port 0
/// picks a free port (see `ws_server_port`).
///
/// Errors: WS_ERR_NULL, WS_ERR_BAD_HOST, WS_ERR_ADDR_IN_USE, WS_ERR_IO
/// (also: the backplane's broker, `ws_server_set_backplane`, cannot be
/// reached), WS_ERR_INVALID_ARGUMENT (options that contradict each other),
/// WS_ERR_STATE (listen twice, or after close). Ownership: `host` is
/// borrowed for the call. Thread: any (not inside this server's callbacks).
#[no_mangle]
pub unsafe extern "C" fn ws_server_listen(srv: *mut ws_server, host: *const c_char, port: u16) -> ws_result {
    run(|| {
        let w = wrapper(srv)?;
        let host = str_arg(host, "host", WS_ERR_BAD_HOST)?;
        let tls = match &*w.tls.lock() {
            (false, _) => None,
            (true, Some(tls)) => Some(tls.clone()),
            (true, None) => {
                return Err(fail(Error::Tls(
                    "TLS is enabled but no certificate and key were set (ws_server_set_tls)".into(),
                )))
            }
        };
        if tls.is_some() {
            w.server.update_config(|c| c.tls = tls).map_err(fail)?;
        }
        done(w.server.listen(host, port))
    })
}

/// Writes the bound port to `*out_port` (useful after listening on port 0).
///
/// Errors: WS_ERR_NULL, WS_ERR_STATE (not listening yet). Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_server_port(srv: *const ws_server, out_port: *mut u16) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let out_port = out(out_port, "out_port")?;
        let addr = s.local_addr().ok_or_else(|| fail(Error::State("the server is not listening".into())))?;
        *out_port = addr.port();
        Ok(WS_OK)
    })
}

/// Queues one message for connection `conn`; never blocks on the network.
///
/// Returns WS_OK (queued), WS_BACKPRESSURE (queued, but the connection is
/// now over WS_OPT_SEND_QUEUE_LIMIT: wait for `on_drain`), or an error:
/// WS_ERR_NULL (`data` NULL with `len` > 0), WS_ERR_INVALID_ARGUMENT (bad
/// kind), WS_ERR_INVALID_UTF8 (WS_TEXT that is not UTF-8), WS_ERR_CLOSED
/// (closed, closing, or refused by `on_open`), WS_ERR_NO_SUCH_CONN (never
/// issued), WS_ERR_DROPPED (not queued: the connection is already at
/// WS_OPT_SEND_QUEUE_LIMIT and this message would take it past
/// WS_OPT_SEND_QUEUE_HARD_LIMIT; the first such refusal until the queue
/// drains is also logged at WS_LOG_WARN). A connection under its limit
/// takes any message, so every message a client may send can be echoed. Ownership: `data` is copied before
/// the call returns. Thread: any, callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_server_send(
    srv: *const ws_server,
    conn: u64,
    data: *const u8,
    len: usize,
    kind: ws_kind,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let data = bytes(data, len, "data")?;
        let kind = self::kind(kind)?;
        Ok(status(s.send(conn, data, kind)))
    })
}

/// `ws_server_send_ex` flag: send this message uncompressed even where the
/// client negotiated permessage-deflate (data that is compressed already).
pub const WS_SEND_NO_COMPRESS: u32 = 1;

/// `ws_server_send` with flags: 0, or WS_SEND_NO_COMPRESS. Results as
/// `ws_server_send`, plus WS_ERR_INVALID_ARGUMENT for an unknown flag.
/// Ownership: `data` is copied before the call returns. Thread: any,
/// callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_server_send_ex(
    srv: *const ws_server,
    conn: u64,
    data: *const u8,
    len: usize,
    kind: ws_kind,
    flags: u32,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let data = bytes(data, len, "data")?;
        let kind = self::kind(kind)?;
        if flags & !WS_SEND_NO_COMPRESS != 0 {
            return Err(fail(Error::InvalidArgument(format!("unknown send flags {flags:#x}"))));
        }
        Ok(status(s.send_with(conn, data, kind, flags & WS_SEND_NO_COMPRESS == 0)))
    })
}

/// Queues one message for every open connection except `except` (0: none).
/// The frame is encoded once and shared. Connections that are closing or
/// over their hard limit are skipped. `*out_queued` (may be NULL) receives
/// how many connections queued it.
///
/// Errors: as `ws_server_send`. Ownership: `data` is copied. Thread: any,
/// callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_server_broadcast(
    srv: *const ws_server,
    data: *const u8,
    len: usize,
    kind: ws_kind,
    except: u64,
    out_queued: *mut usize,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let data = bytes(data, len, "data")?;
        let kind = self::kind(kind)?;
        let n = s.broadcast(data, kind, (except != 0).then_some(except)).map_err(fail)?;
        // SAFETY: NULL or writable memory, as the header requires.
        if let Some(out_queued) = unsafe { out_queued.as_mut() } {
            *out_queued = n;
        }
        Ok(WS_OK)
    })
}

/// Starts closing connection `conn`: what is queued goes out, then a close
/// frame with `code` (1000-1003, 1007-1014, 3000-4999) and `reason` (UTF-8,
/// at most 123 bytes; NULL means none). `on_close` follows once the client
/// answers (or WS_OPT_CLOSE_TIMEOUT_MS passes).
///
/// Errors: WS_ERR_NULL, WS_ERR_BAD_CLOSE_CODE, WS_ERR_REASON_TOO_LONG,
/// WS_ERR_INVALID_UTF8, WS_ERR_CLOSED, WS_ERR_NO_SUCH_CONN. Ownership:
/// `reason` is copied. Thread: any, callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_server_disconnect(
    srv: *const ws_server,
    conn: u64,
    code: u16,
    reason: *const c_char,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let reason = opt_str(reason, "reason", WS_ERR_INVALID_UTF8)?.unwrap_or("");
        done(s.disconnect(conn, code, reason))
    })
}

/// Writes to `*out_bytes` how many bytes are queued for `conn` and not yet
/// written to its socket.
///
/// Errors: WS_ERR_NULL, WS_ERR_CLOSED, WS_ERR_NO_SUCH_CONN. Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_server_queued_bytes(srv: *const ws_server, conn: u64, out_bytes: *mut usize) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let out_bytes = out(out_bytes, "out_bytes")?;
        *out_bytes = s.queued_bytes(conn).map_err(fail)?;
        Ok(WS_OK)
    })
}

/// Closes the server gracefully: stops accepting, sends close 1001 to every
/// client after what is already queued for it, waits up to `grace_ms` for
/// the close handshakes, drops the connections left (their `on_close` says
/// 1006), and returns when no callback can run any more. Calling it again,
/// or on a server that never listened, is fine (WS_OK).
///
/// Called from inside one of this server's callbacks, it starts the close
/// and returns at once without waiting (waiting there would deadlock); the
/// remaining `on_close` events follow, and `ws_server_free` (outside the
/// callbacks) waits for them. Thread: any. Errors: WS_ERR_NULL.
#[no_mangle]
pub unsafe extern "C" fn ws_server_close(srv: *mut ws_server, grace_ms: u32) -> ws_result {
    run(|| {
        let s = server(srv)?;
        s.close(Duration::from_millis(grace_ms as u64));
        Ok(WS_OK)
    })
}

/// Turns TLS (wss://) on or off for `ws_server_listen` (non-zero: on).
/// Turning it on needs a configuration from `ws_server_set_tls`, else
/// listen fails with WS_ERR_TLS. Before listen only (WS_ERR_STATE after).
/// Errors: WS_ERR_NULL, WS_ERR_STATE. Thread: any, not concurrently with
/// listen.
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_ssl(srv: *mut ws_server, enabled: i32) -> ws_result {
    run(|| {
        let w = wrapper(srv)?;
        done(w.server.update_config(|_| w.tls.lock().0 = enabled != 0))
    })
}

/// Checks `cfg` as a whole (certificate and key present, key matches the
/// certificate, CA usable), keeps the result for `ws_server_listen`, and
/// turns TLS on. Before listen only; use `ws_server_reload_tls` after.
/// Errors: WS_ERR_NULL, WS_ERR_TLS (the message says what is wrong),
/// WS_ERR_STATE. Ownership: `cfg` is only read; the caller still frees it.
/// Thread: any, not concurrently with listen.
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_tls(srv: *mut ws_server, cfg: *const ws_tls_config) -> ws_result {
    run(|| {
        let w = wrapper(srv)?;
        let tls = build_tls(cfg)?;
        done(w.server.update_config(|_| *w.tls.lock() = (true, Some(tls))))
    })
}

/// Swaps certificate, key and CA for new handshakes on a listening TLS
/// server; open connections carry on. On failure the old certificate stays
/// in use and the result says why. Errors: WS_ERR_NULL, WS_ERR_TLS,
/// WS_ERR_STATE (not listening with TLS). Ownership: `cfg` is only read.
/// Thread: any, callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_server_reload_tls(srv: *const ws_server, cfg: *const ws_tls_config) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let tls = build_tls(cfg)?;
        done(s.reload_tls(tls))
    })
}
