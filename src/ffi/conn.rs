//! `ws_conn_*`: per-connection calls that are not about sending — the
//! host's answer to an open, and the host's pointer for a connection.
use super::args::{opt_str, out, run};
use super::error::{done, ws_result};
use super::server::{server, ws_server};
use std::ffi::{c_char, c_void};
use ws_result::*;

/// Accepts connection `conn`, whose WS_EVENT_OPEN is waiting for the host
/// (event mode without WS_OPT_AUTO_ACCEPT). `subprotocol`: NULL keeps the
/// server's own choice (`ws_server_set_subprotocols`); otherwise one of
/// the subprotocols the client offered (`ws_request_offered_subprotocol`).
/// Messages sent before the answer go out right after the 101 response.
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (a subprotocol the client
/// did not offer), WS_ERR_STATE (already answered, or not waiting for an
/// answer), WS_ERR_CLOSED (gone: the open timed out or the server closed),
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
