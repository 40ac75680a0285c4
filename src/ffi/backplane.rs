//! The Redis backplane through the C ABI: one setter, before listen.
use super::args::{opt_str, run};
use super::error::{done, fail, ws_result};
use super::server::server;
use super::server::ws_server;
use crate::Backplane;
use std::ffi::c_char;
use ws_result::*;

/// Joins the server to a Redis backplane at `url`, so that
/// `ws_server_publish` reaches the topic's subscribers on every server
/// joined to the same broker with the same channel prefix, not only this
/// one's. NULL leaves the backplane (the default: topics stay in this
/// process). Before `ws_server_listen`.
///
/// `url`: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P]`, or
/// `rediss://...` for TLS, verified against the system's CA certificates
/// or, with `&ca_file=PATH` (a PEM file, read now), against those. The
/// prefix (1..256 bytes, default "wsserver:") starts every channel name:
/// topic T travels on channel P+T, and P alone is the servers' control
/// channel.
///
/// How it behaves:
/// - `ws_server_listen` connects to the broker (at most about 3 s) and
///   fails with WS_ERR_IO, naming the broker and the reason, when it
///   cannot (refused, unreachable, wrong password, TLS).
/// - Local subscribers are served directly, as without a backplane; the
///   message goes to the broker (once, whatever the number of subscribers)
///   only when another server subscribes the topic, and comes back from
///   the broker to every other server subscribing it (this server drops
///   its own echo). A server subscribes a topic on the broker only while
///   the topic has local subscribers. Each publishing thread's order is
///   kept for every subscriber, local or remote; `except` applies only
///   here. A new subscription elsewhere reaches a publisher within a
///   broker round trip: messages published before that are not delivered
///   to it.
/// - Outage: when the link to the broker is lost (it closed, or no
///   heartbeat came back for 5 s) the server logs it at WS_LOG_WARN,
///   goes on delivering to local subscribers, and reconnects with backoff
///   (100 ms doubling to 5 s), resubscribing its topics (logged at
///   WS_LOG_INFO). Messages published during the outage, or while more
///   than 16 MiB wait for the broker, are delivered locally only: other
///   servers never get them; they are counted in
///   `ws_stats.backplane_local_only`. Messages other servers published
///   meanwhile do not reach this server's subscribers.
/// - Counters: `ws_stats.backplane_connected`, `_published`, `_received`,
///   `_local_only`, `_reconnects`.
///
/// Errors: WS_ERR_NULL (`srv`), WS_ERR_INVALID_ARGUMENT (a malformed URL:
/// the message says what is wrong — scheme, host, port, database,
/// parameter, prefix, ca_file), WS_ERR_INVALID_UTF8, WS_ERR_STATE (after
/// listen). Ownership: `url` is copied; the caller keeps it. Thread: any,
/// not concurrently with `ws_server_listen`.
#[no_mangle]
pub unsafe extern "C" fn ws_server_set_backplane(srv: *mut ws_server, url: *const c_char) -> ws_result {
    run(|| {
        let s = server(srv)?;
        let backplane = match opt_str(url, "url", WS_ERR_INVALID_UTF8)? {
            Some(url) => Some(Backplane::parse(url).map_err(fail)?),
            None => None,
        };
        done(
            s.update_config(|c| c.backplane = backplane)
                .map_err(|_| crate::Error::State("the backplane can only be set before ws_server_listen".into())),
        )
    })
}
