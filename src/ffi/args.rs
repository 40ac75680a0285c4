//! Borrowing C arguments (NULL checks, strings, byte ranges, out-parameters) and running an
//! `extern "C"` body, the same way in every function of the C ABI.
use super::error::{null, set_last_error, ws_result};
use super::panic::guard_result;
use std::ffi::{c_char, CStr};

/// Runs a body that fails with `Err(code)`, catching panics.
#[inline(always)]
pub(crate) fn run(f: impl FnOnce() -> Result<ws_result, ws_result>) -> ws_result {
    guard_result(|| f().unwrap_or_else(|code| code))
}

/// Borrows an optional NUL-terminated string (NULL → None); one that is not
/// UTF-8 fails with `bad_utf8`, the message naming `what`.
pub(crate) fn opt_str<'a>(p: *const c_char, what: &str, bad_utf8: ws_result) -> Result<Option<&'a str>, ws_result> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller passes a NUL-terminated string, live for the call.
    unsafe { CStr::from_ptr(p) }.to_str().map(Some).map_err(|_| {
        set_last_error(&format!("{what} is not valid UTF-8"));
        bad_utf8
    })
}

/// As [`opt_str`], but NULL fails with WS_ERR_NULL.
pub(crate) fn str_arg<'a>(p: *const c_char, what: &str, bad_utf8: ws_result) -> Result<&'a str, ws_result> {
    opt_str(p, what, bad_utf8)?.ok_or_else(|| null(what))
}

/// Borrows `len` bytes at `data`; NULL is fine only when `len` is 0.
#[inline]
pub(crate) fn bytes<'a>(data: *const u8, len: usize, what: &str) -> Result<&'a [u8], ws_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(null_bytes(what));
    }
    // SAFETY: the caller passes `len` readable bytes, live for the call.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

#[cold]
fn null_bytes(what: &str) -> ws_result {
    null(&format!("{what} (with a non-zero len)"))
}

/// Borrows the out-parameter `p` for writing; NULL fails with WS_ERR_NULL.
pub(crate) fn out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, ws_result> {
    // SAFETY: the caller passes writable memory for a `T`, or NULL.
    unsafe { p.as_mut() }.ok_or_else(|| null(what))
}

/// Frees an object handed to C by `Box::into_raw`; NULL is ignored.
///
/// # Safety
/// `p` is NULL or a pointer from `Box::into_raw` not freed yet.
pub(crate) unsafe fn free_boxed<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: as the caller promises.
        drop(unsafe { Box::from_raw(p) });
    }
}
