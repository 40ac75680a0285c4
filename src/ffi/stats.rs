//! `ws_stats` (the Rust [`Stats`], renamed in the header): the server's
//! counters through the C ABI.
use super::args::run;
use super::error::{null, ws_result};
use super::server::{server, ws_server};
use crate::Stats;

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
    out_stats: *mut Stats,
    stats_size: usize,
) -> ws_result {
    run(|| {
        let s = server(srv)?;
        if out_stats.is_null() {
            return Err(null("out_stats"));
        }
        let full = s.stats();
        let n = stats_size.min(std::mem::size_of::<Stats>()) / 8 * 8;
        // SAFETY: the caller provides `stats_size` writable bytes; we write
        // at most that many, whole u64 members only.
        unsafe { std::ptr::copy_nonoverlapping(&full as *const Stats as *const u8, out_stats as *mut u8, n) };
        Ok(ws_result::WS_OK)
    })
}
