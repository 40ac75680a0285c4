//! `ws_server`: create, configure, listen, send, close, free.
use super::args::{bytes, free_boxed, opt_str, out, run, str_arg};
use super::callbacks::{ws_callbacks, ws_kind, CHandler, WS_BINARY, WS_TEXT};
use super::error::{done, fail, null, ws_result};
use super::panic::guard;
use super::tls::{build as build_tls, ws_tls_config};
use crate::{Config, Error, Kind, LogLevel, OverflowPolicy, SendStatus, Server, Tls};
use parking_lot::Mutex;
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;
use ws_result::*;

/// A WebSocket server. Opaque; create with `ws_server_new`, destroy with
/// `ws_server_free`.
pub struct ws_server {
    server: Server,
    /// TLS staged before listen: (enabled, configuration).
    tls: Mutex<(bool, Option<Tls>)>,
}

/// An option id for `ws_server_set_option`.
pub type ws_option = u32;
/// Largest message accepted from a client, in bytes (bigger: close 1009).
/// Default 1 MiB: enough for chat and JSON, small enough that a client
/// cannot pin much memory.
pub const WS_OPT_MAX_MESSAGE_SIZE: ws_option = 1;
/// Largest single frame accepted, in bytes (bigger: close 1009). Default 1 MiB.
pub const WS_OPT_MAX_FRAME_SIZE: ws_option = 2;
/// Connections (handshakes included) above which new clients get HTTP 503.
/// Default 10000: a public server's fd limit is usually near it.
pub const WS_OPT_MAX_CONNECTIONS: ws_option = 3;
/// Milliseconds a client has to finish its handshake (TLS included).
/// Default 10000: slow or silent clients cannot hold a slot.
pub const WS_OPT_HANDSHAKE_TIMEOUT_MS: ws_option = 4;
/// Milliseconds without data from a client before the server pings it;
/// 0 disables. Default 30000: keeps NATs and load balancers open.
pub const WS_OPT_PING_INTERVAL_MS: ws_option = 5;
/// Milliseconds without any data (pongs included) after which a client is
/// dropped as dead (`on_error` WS_ERR_TIMEOUT, close 1006); 0 disables.
/// Default 75000: two missed pings.
pub const WS_OPT_IDLE_TIMEOUT_MS: ws_option = 6;
/// Milliseconds to wait for the client's close frame after sending ours.
/// Default 5000.
pub const WS_OPT_CLOSE_TIMEOUT_MS: ws_option = 7;
/// Queued outgoing bytes per connection at which a send returns
/// WS_BACKPRESSURE (still queued). Default 65536: enough for bursts, small
/// enough for 100k clients.
pub const WS_OPT_SEND_QUEUE_LIMIT: ws_option = 8;
/// Queued outgoing bytes per connection a send may never exceed; past it
/// WS_OPT_OVERFLOW_POLICY applies. Default 1 MiB.
pub const WS_OPT_SEND_QUEUE_HARD_LIMIT: ws_option = 9;
/// What a send past the hard limit does: 0 refuses the message
/// (WS_ERR_DROPPED, the connection stays open; the default), 1008 or 1013
/// also closes the connection with that code.
pub const WS_OPT_OVERFLOW_POLICY: ws_option = 10;
/// Number of I/O threads running connections and callbacks. Default 1:
/// callbacks never run concurrently, as most C hosts expect. With more,
/// connections are dealt out round-robin; one connection's callbacks always
/// run on the same thread, different connections' may run concurrently.
pub const WS_OPT_THREADS: ws_option = 11;
/// Most verbose WS_LOG_* level delivered to `on_log`. Default WS_LOG_INFO.
pub const WS_OPT_LOG_LEVEL: ws_option = 12;

/// Borrows the `ws_server` behind `srv`, or fails with WS_ERR_NULL.
fn wrapper<'a>(srv: *const ws_server) -> Result<&'a ws_server, ws_result> {
    // SAFETY: the header requires a pointer from ws_server_new, not yet freed.
    unsafe { srv.as_ref() }.ok_or_else(|| null("srv"))
}

/// Borrows the server behind `srv`, or fails with WS_ERR_NULL.
fn server<'a>(srv: *const ws_server) -> Result<&'a Server, ws_result> {
    wrapper(srv).map(|w| &w.server)
}

fn kind(k: ws_kind) -> Result<Kind, ws_result> {
    match k {
        WS_TEXT => Ok(Kind::Text),
        WS_BINARY => Ok(Kind::Binary),
        other => Err(fail(Error::InvalidArgument(format!("kind {other} is not WS_TEXT or WS_BINARY")))),
    }
}

fn status(r: Result<SendStatus, Error>) -> ws_result {
    match r {
        Ok(SendStatus::Queued) => WS_OK,
        Ok(SendStatus::Backpressure) => WS_BACKPRESSURE,
        Err(e) => fail(e),
    }
}

/// Creates a server (not yet listening) that reports events through
/// `callbacks`, passing `user_data` back to each.
///
/// Ownership: `callbacks` is copied (NULL means no callbacks); `user_data`
/// is not touched by the library, and must stay valid until `ws_server_free`
/// returns. The caller owns the result and frees it with `ws_server_free`.
/// Thread: any. Returns NULL only on an internal error (see
/// `ws_last_error`).
#[no_mangle]
pub unsafe extern "C" fn ws_server_new(callbacks: *const ws_callbacks, user_data: *mut c_void) -> *mut ws_server {
    guard(std::ptr::null_mut(), || {
        let empty = ws_callbacks {
            on_open: None,
            on_message: None,
            on_close: None,
            on_error: None,
            on_drain: None,
            on_log: None,
        };
        // SAFETY: the caller passes a valid table or NULL.
        let callbacks = unsafe { callbacks.as_ref() }.copied().unwrap_or(empty);
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
/// of range), WS_ERR_STATE (after listen). Thread: any, not concurrently
/// with `ws_server_listen`.
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_option(srv: *mut ws_server, option: ws_option, value: u64) -> ws_result {
    run(|| {
        let s = server(srv)?;
        s.update_config(|c| apply_option(c, option, value))
            .map_err(fail)?
            .map_err(|m| fail(Error::InvalidArgument(m)))?;
        Ok(WS_OK)
    })
}

/// Sets `option` to `value` in `c`, or says why the value is refused (then
/// `c` is unchanged).
fn apply_option(c: &mut Config, option: ws_option, value: u64) -> Result<(), String> {
    let size =
        || usize::try_from(value).ok().filter(|v| *v > 0).ok_or(format!("option {option}: {value} is out of range"));
    let timeout = || match value {
        0 => Err(format!("option {option}: a timeout must be positive")),
        ms => Ok(Duration::from_millis(ms)),
    };
    match option {
        WS_OPT_MAX_MESSAGE_SIZE => c.max_message_size = size()?,
        WS_OPT_MAX_FRAME_SIZE => c.max_frame_size = size()?,
        WS_OPT_MAX_CONNECTIONS => c.max_connections = size()?,
        WS_OPT_SEND_QUEUE_LIMIT => c.send_queue_limit = size()?,
        WS_OPT_SEND_QUEUE_HARD_LIMIT => c.send_queue_hard_limit = size()?,
        WS_OPT_HANDSHAKE_TIMEOUT_MS => c.handshake_timeout = timeout()?,
        WS_OPT_CLOSE_TIMEOUT_MS => c.close_timeout = timeout()?,
        WS_OPT_PING_INTERVAL_MS => c.ping_interval = Duration::from_millis(value),
        WS_OPT_IDLE_TIMEOUT_MS => c.idle_timeout = Duration::from_millis(value),
        WS_OPT_OVERFLOW_POLICY => {
            c.overflow = match value {
                0 => OverflowPolicy::Drop,
                1008 | 1013 => OverflowPolicy::Close(value as u16),
                _ => return Err(format!("overflow policy must be 0, 1008 or 1013, not {value}")),
            }
        }
        WS_OPT_THREADS => match value {
            1..=256 => c.threads = value as usize,
            _ => return Err(format!("threads must be 1..256, not {value}")),
        },
        WS_OPT_LOG_LEVEL => {
            c.log_level = match value {
                1 => LogLevel::Error,
                2 => LogLevel::Warn,
                3 => LogLevel::Info,
                4 => LogLevel::Debug,
                _ => return Err(format!("log level must be 1..4, not {value}")),
            }
        }
        _ => return Err(format!("unknown option {option}")),
    }
    Ok(())
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
    run(|| {
        let s = server(srv)?;
        if names.is_null() && count > 0 {
            return Err(null("names"));
        }
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: the caller passes `count` string pointers.
            let name = str_arg(unsafe { *names.add(i) }, "a subprotocol name", WS_ERR_INVALID_ARGUMENT)?;
            crate::config::check_subprotocol(name).map_err(fail)?;
            list.push(name.to_string());
        }
        done(s.update_config(|c| c.subprotocols = list))
    })
}

/// Binds `host:port` and starts serving; returns once the socket listens,
/// so address errors come back from this call. `host`: an IPv4 or IPv6
/// literal ("0.0.0.0", "::", "[::1]") or "localhost" (127.0.0.1). Port 0
/// picks a free port (see `ws_server_port`).
///
/// Errors: WS_ERR_NULL, WS_ERR_BAD_HOST, WS_ERR_ADDR_IN_USE, WS_ERR_IO,
/// WS_ERR_INVALID_ARGUMENT (options that contradict each other),
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
/// issued), WS_ERR_DROPPED
/// (over the hard limit; not queued). Ownership: `data` is copied before
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
