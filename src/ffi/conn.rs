//! `ws_conn_*`: per-connection calls that are not about sending — the
//! host's answer to an open, and the host's pointer for a connection.
use super::args::{bytes, opt_str, out, run, str_arg};
use super::error::{done, ws_result};
use super::server::{server, ws_server};
use std::ffi::{c_char, c_void};
use ws_result::*;

/// Accepts connection `conn`, whose open is waiting for the host (a
/// WS_EVENT_OPEN without WS_OPT_AUTO_ACCEPT, or `on_open` returned or is
/// running before WS_OPEN_DEFER). `subprotocol`: NULL keeps the
/// server's own choice (`ws_server_set_subprotocols`); otherwise one of
/// the subprotocols the client offered (`ws_request_offered_subprotocol`).
/// Messages sent before the answer go out right after the 101 response.
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (a subprotocol the client
/// did not offer), WS_ERR_STATE (already answered, or not waiting for an
/// answer), WS_ERR_CLOSED (gone: refused, timed out, or the server closed;
/// right after a refusal either this or WS_ERR_STATE comes back, depending
/// on whether the I/O thread has already let the connection go),
/// WS_ERR_NO_SUCH_CONN. Ownership: `subprotocol` is copied. Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_conn_accept(srv: *const ws_server, conn: u64, subprotocol: *const c_char) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let sub = opt_str(subprotocol, "subprotocol", WS_ERR_INVALID_ARGUMENT)?;
        done(s.accept(conn, sub))
    })
}

/// Refuses connection `conn`, whose WS_EVENT_OPEN is waiting for the host,
/// with HTTP status `status` (400..599). No WS_EVENT_CLOSE follows.
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (status out of range), and
/// as `ws_conn_accept`. Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_conn_refuse(srv: *const ws_server, conn: u64, status: u16) -> ws_result {
    run(|| done(server(srv)?.refuse(conn, status)))
}

/// Refuses connection `conn`'s waiting open with HTTP status `status`
/// (400..599) and `body` (`len` bytes, at most 64 KiB; NULL with 0 for
/// none). Its Content-Type is text/plain unless set with
/// `ws_conn_add_header`. No close event follows.
///
/// Errors: as `ws_conn_refuse`, and WS_ERR_INVALID_ARGUMENT for a body over
/// 64 KiB. Ownership: `body` is copied. Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_conn_refuse_with_body(
    srv: *const ws_server,
    conn: u64,
    status: u16,
    body: *const u8,
    len: usize,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let body = bytes(body, len, "body")?;
        done(s.refuse_with_body(conn, status, Some(body)))
    })
}

/// Adds the header `name: value` to the answer to connection `conn`'s open
/// (the 101, or the refusal), e.g. `Set-Cookie`; while that open waits for
/// its answer (in `on_open`, after WS_OPEN_DEFER, or after WS_EVENT_OPEN).
/// Also for a plain HTTP request `conn` waiting for `ws_http_respond`.
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (a name that is not a token,
/// a value with CR, LF or NUL, or a header the server sets itself:
/// Content-Length, Transfer-Encoding, Connection, Upgrade,
/// Sec-WebSocket-Accept, Sec-WebSocket-Extensions), WS_ERR_INVALID_UTF8,
/// WS_ERR_STATE (already answered), WS_ERR_CLOSED (gone: refused, timed
/// out, or the server closed — after a refusal the connection may already
/// be gone, so either of these two comes back), WS_ERR_NO_SUCH_CONN.
/// Ownership: both strings are copied. Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_conn_add_header(
    srv: *const ws_server,
    conn: u64,
    name: *const c_char,
    value: *const c_char,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let name = str_arg(name, "name", WS_ERR_INVALID_UTF8)?;
        let value = str_arg(value, "value", WS_ERR_INVALID_UTF8)?;
        done(s.add_answer_header(conn, name, value))
    })
}

/// Answers plain HTTP request `id` (from `on_http` or a WS_EVENT_HTTP)
/// with `status` (100..599), `content_type` (NULL: none) and `body` (`len`
/// bytes; NULL with 0 for none). Headers added before with
/// `ws_conn_add_header(srv, id, ...)` go along. Keep-alive and HEAD are
/// handled by the server.
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (status out of range, a
/// content type with CR/LF), WS_ERR_INVALID_UTF8 (a content type that is
/// not UTF-8), WS_ERR_STATE (already answered, the answer not sent yet),
/// WS_ERR_CLOSED (no longer waiting: already answered and sent, or too
/// late, after the timeout's 503), WS_ERR_NO_SUCH_CONN (never issued). Ownership: everything is
/// copied. Thread: any, callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_http_respond(
    srv: *const ws_server,
    id: u64,
    status: u16,
    content_type: *const c_char,
    body: *const u8,
    len: usize,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let content_type = opt_str(content_type, "content_type", WS_ERR_INVALID_UTF8)?;
        let body = bytes(body, len, "body")?;
        done(s.respond(id, status, content_type, body))
    })
}

/// Stores `user_data` for connection `conn`; the library hands it back in
/// the connection's events (`ws_event.user_data`) and from
/// `ws_conn_user_data`, and never touches what it points to.
///
/// Lifetime: from WS_EVENT_OPEN / `on_open` on, until the connection's
/// close is delivered (`on_close`, or the WS_EVENT_CLOSE, which carries it
/// a last time); once the connection has ended, these calls give
/// WS_ERR_CLOSED. Errors: WS_ERR_NULL, WS_ERR_CLOSED, WS_ERR_NO_SUCH_CONN.
/// Thread: any, callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_conn_set_user_data(srv: *const ws_server, conn: u64, user_data: *mut c_void) -> ws_result {
    run(|| done(server(srv)?.set_user_data(conn, user_data as usize)))
}

/// Writes connection `conn`'s user data (NULL until set) to
/// `*out_user_data`. Inside `on_close` it still works for that connection.
///
/// Errors: WS_ERR_NULL, WS_ERR_CLOSED, WS_ERR_NO_SUCH_CONN. Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_conn_user_data(
    srv: *const ws_server,
    conn: u64,
    out_user_data: *mut *mut c_void,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let out_user_data = out(out_user_data, "out_user_data")?;
        *out_user_data = s.user_data(conn).map_err(super::error::fail)? as *mut c_void;
        Ok(WS_OK)
    })
}
