//! Topics (publish/subscribe) through the C ABI.
use super::args::{bytes, out, run, str_arg};
use super::callbacks::ws_kind;
use super::error::{done, fail, ws_result};
use super::server::{kind, server, ws_server};
use std::ffi::c_char;
use ws_result::*;

/// Subscribes connection `conn` to `topic` (UTF-8, 1..1024 bytes); already
/// subscribed is fine. The subscription ends when the connection does.
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (topic empty or too long),
/// WS_ERR_INVALID_UTF8, WS_ERR_CLOSED, WS_ERR_NO_SUCH_CONN. Ownership:
/// `topic` is copied. Thread: any, callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_conn_subscribe(srv: *const ws_server, conn: u64, topic: *const c_char) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let topic = str_arg(topic, "topic", WS_ERR_INVALID_UTF8)?;
        done(s.subscribe(conn, topic))
    })
}

/// Unsubscribes connection `conn` from `topic`; not subscribed is fine.
/// Errors, ownership and thread: as `ws_conn_subscribe`.
#[no_mangle]
pub unsafe extern "C" fn ws_conn_unsubscribe(srv: *const ws_server, conn: u64, topic: *const c_char) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let topic = str_arg(topic, "topic", WS_ERR_INVALID_UTF8)?;
        done(s.unsubscribe(conn, topic))
    })
}

/// Queues one message for every subscriber of `topic` except `except` (0:
/// none). The frame is encoded once and shared by all subscribers; a topic
/// nobody subscribes to is fine (0 queued). Messages published from one
/// thread reach each subscriber in the order they were published.
/// Subscribers over their send-queue limits are skipped (as in
/// `ws_server_broadcast`). `*out_queued` (may be NULL) receives how many
/// connections queued it.
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (bad topic or kind),
/// WS_ERR_INVALID_UTF8. Ownership: `topic` and `data` are copied. Thread:
/// any, callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_server_publish(
    srv: *const ws_server,
    topic: *const c_char,
    data: *const u8,
    len: usize,
    kind_: ws_kind,
    except: u64,
    out_queued: *mut usize,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let topic = str_arg(topic, "topic", WS_ERR_INVALID_UTF8)?;
        let data = bytes(data, len, "data")?;
        let kind_ = kind(kind_)?;
        let n = s.publish(topic, data, kind_, (except != 0).then_some(except)).map_err(fail)?;
        // SAFETY: NULL or writable memory, as the header requires.
        if let Some(out_queued) = unsafe { out_queued.as_mut() } {
            *out_queued = n;
        }
        Ok(WS_OK)
    })
}

/// Writes to `*out_count` how many connections are subscribed to `topic`
/// now (0 for a topic never used).
///
/// Errors: WS_ERR_NULL, WS_ERR_INVALID_UTF8. Thread: any.
#[no_mangle]
pub unsafe extern "C" fn ws_server_subscribers(
    srv: *const ws_server,
    topic: *const c_char,
    out_count: *mut usize,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let topic = str_arg(topic, "topic", WS_ERR_INVALID_UTF8)?;
        let out_count = out(out_count, "out_count")?;
        *out_count = s.subscribers(topic);
        Ok(WS_OK)
    })
}
