//! `ws_stats`: the server's counters through the C ABI.
use super::args::run;
use super::error::{null, ws_result};
use super::server::{server, ws_server};

/// A snapshot of a server's statistics. Counters count since listen;
/// `open_connections`, `queued_bytes`, `topics` and `subscriptions` are
/// values now. Members are only ever appended: fill one with the
/// `ws_server_stats(srv, &stats)` macro, which passes its size.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct ws_stats {
    /// Connections open now (handshake done, close not yet delivered).
    pub open_connections: u64,
    /// WebSocket handshakes answered with 101.
    pub handshakes_accepted: u64,
    /// Handshakes refused (bad request, by the host, limits, origin, path).
    pub handshakes_refused: u64,
    /// Whole messages received from clients.
    pub messages_in: u64,
    /// Messages queued to clients (a broadcast or publish counts once per recipient).
    pub messages_out: u64,
    /// Payload bytes of the messages received.
    pub bytes_in: u64,
    /// Bytes written to client sockets (frames and handshakes).
    pub bytes_out: u64,
    /// Bytes queued for clients and not yet written, over all connections.
    pub queued_bytes: u64,
    /// Topics with at least one subscriber.
    pub topics: u64,
    /// Subscriptions over all topics.
    pub subscriptions: u64,
    /// Plain HTTP requests answered.
    pub http_requests: u64,
}

/// Fills the first `stats_size` bytes of `*out_stats` (pass
/// `sizeof(ws_stats)`, as the `ws_server_stats` macro does; a program
/// built against an older, shorter `ws_stats` gets just its members).
/// Cheap enough to call every second from any thread: one pass over the
/// connections for `queued_bytes`, no lock held across them.
///
/// Errors: WS_ERR_NULL. Ownership: `out_stats` is the caller's. Thread: any,
/// callbacks included.
#[no_mangle]
pub unsafe extern "C" fn ws_server_stats_sized(
    srv: *const ws_server,
    out_stats: *mut ws_stats,
    stats_size: usize,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        if out_stats.is_null() {
            return Err(null("out_stats"));
        }
        let st = s.stats();
        let full = ws_stats {
            open_connections: st.open_connections,
            handshakes_accepted: st.handshakes_accepted,
            handshakes_refused: st.handshakes_refused,
            messages_in: st.messages_in,
            messages_out: st.messages_out,
            bytes_in: st.bytes_in,
            bytes_out: st.bytes_out,
            queued_bytes: st.queued_bytes,
            topics: st.topics,
            subscriptions: st.subscriptions,
            http_requests: st.http_requests,
        };
        let n = stats_size.min(std::mem::size_of::<ws_stats>()) / 8 * 8;
        // SAFETY: the caller provides `stats_size` writable bytes; we write
        // at most that many, whole u64 members only.
        unsafe { std::ptr::copy_nonoverlapping(&full as *const ws_stats as *const u8, out_stats as *mut u8, n) };
        Ok(ws_result::WS_OK)
    })
}
