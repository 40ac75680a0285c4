//! Server-wide counters: relaxed atomics bumped on the hot path (one add
//! each, no lock), read together by `ServerHandle::stats`.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a server's counters (all since `listen`, except the
/// gauges `open_connections`, `queued_bytes`, `topics`, `subscriptions`,
/// `backplane_connected`, `memory_held`). Counters never go back; each
/// moves right after what it counts, so a client can hold a reply a moment
/// before `messages_out` and `bytes_out` show it: wait for a count rather
/// than read it once.
/// In C this is `ws_stats`: members are only ever appended; fill one with
/// the `ws_server_stats(srv, &stats)` macro, which passes its size.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections open now (handshake done, close not yet delivered).
    pub open_connections: u64,
    /// WebSocket handshakes answered with 101.
    pub handshakes_accepted: u64,
    /// Handshakes refused (bad request, by the host, by limits, origin, path).
    pub handshakes_refused: u64,
    /// Whole messages received from clients.
    pub messages_in: u64,
    /// Messages queued to clients (a broadcast counts once per recipient).
    pub messages_out: u64,
    /// Payload bytes of the messages received.
    pub bytes_in: u64,
    /// Bytes written to client sockets (frames, handshakes and HTTP included).
    pub bytes_out: u64,
    /// Bytes queued for clients and not yet written, over all connections.
    pub queued_bytes: u64,
    /// Topics with at least one subscriber.
    pub topics: u64,
    /// Subscriptions over all topics.
    pub subscriptions: u64,
    /// Plain HTTP requests answered (static files, health, the host's handler).
    pub http_requests: u64,
    /// Now: 1 while the link to the backplane's broker is up, else 0 (and 0
    /// without a backplane).
    pub backplane_connected: u64,
    /// Publishes sent to the broker (only those some other server wanted).
    pub backplane_published: u64,
    /// Messages received from other servers (or other programs) through
    /// the broker (once per message, however many local subscribers got it).
    pub backplane_received: u64,
    /// Publishes other servers wanted but did not get: made while the
    /// broker was unreachable (or too far behind), delivered locally only.
    pub backplane_local_only: u64,
    /// Times the link to the broker was re-established after a loss.
    pub backplane_reconnects: u64,
    /// Now: bytes counted against WS_OPT_MEMORY_BUDGET (partial incoming
    /// messages, send queues, queued events); 0 without a budget.
    pub memory_held: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub handshakes_accepted: AtomicU64,
    pub handshakes_refused: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub http_requests: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// The counters' part of a snapshot.
    pub fn read(&self) -> Stats {
        Stats {
            handshakes_accepted: self.handshakes_accepted.load(Relaxed),
            handshakes_refused: self.handshakes_refused.load(Relaxed),
            messages_in: self.messages_in.load(Relaxed),
            messages_out: self.messages_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            http_requests: self.http_requests.load(Relaxed),
            ..Stats::default()
        }
    }
}
