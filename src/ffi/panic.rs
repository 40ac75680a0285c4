//! The guard around every `extern "C"` body: a panic becomes an error
//! result instead of unwinding into C (which would abort the host).
use super::error::{set_last_error, ws_result};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; on panic records the message and returns `fallback`.
/// Inlined (with `run` and `bytes`): every C call passes through here, and
/// a call of its own cost the send path ~40 instructions per message.
#[inline(always)]
pub(crate) fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            set_last_error(&format!("internal error (panic caught at the C boundary): {what}"));
            fallback
        }
    }
}

/// [`guard`] for calls returning a [`ws_result`].
#[inline(always)]
pub(crate) fn guard_result(f: impl FnOnce() -> ws_result) -> ws_result {
    guard(ws_result::WS_ERR_PANIC, f)
}
