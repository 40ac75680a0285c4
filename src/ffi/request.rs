//! `ws_request`: read access to a handshake request during `on_open`.
use super::args::{out, run};
use super::error::{fail, null, ws_result};
use super::panic::guard;
use crate::Request;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

/// A client's handshake request. Opaque. In `on_open`: valid during the
/// call, on its thread. In a WS_EVENT_OPEN: valid until `ws_event_free`,
/// on one thread at a time.
pub struct ws_request {
    request: *const Request,
    /// C copies handed out so far; freed when the callback returns.
    strings: RefCell<Vec<CString>>,
}

impl ws_request {
    pub(crate) fn new(request: &Request) -> ws_request {
        ws_request { request, strings: RefCell::new(Vec::new()) }
    }

    /// Keeps a C copy of `s` alive for the callback; NULL if `s` holds NUL.
    fn keep(&self, s: &str) -> *const c_char {
        match CString::new(s) {
            Ok(c) => {
                let p = c.as_ptr();
                self.strings.borrow_mut().push(c);
                p
            }
            Err(_) => std::ptr::null(),
        }
    }
}

/// Runs `f` on the request behind `req`, or returns NULL for a NULL `req`.
fn with(req: *const ws_request, f: impl FnOnce(&ws_request, &Request) -> *const c_char) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: the header requires `req` to come from the running on_open.
        let Some(r) = (unsafe { req.as_ref() }) else { return std::ptr::null() };
        // SAFETY: `request` outlives the on_open call `r` belongs to.
        f(r, unsafe { &*r.request })
    })
}

/// The request path without the query, e.g. "/chat".
///
/// Ownership: owned by the library, valid until `on_open` returns (for the
/// request of a WS_EVENT_OPEN: until `ws_event_free`). Thread: the one
/// reading the request. NULL `req` → NULL.
#[no_mangle]
pub extern "C" fn ws_request_path(req: *const ws_request) -> *const c_char {
    with(req, |r, q| r.keep(q.path()))
}

/// The method, e.g. "GET" (always "GET" for an upgrade). Ownership and
/// thread: as `ws_request_path`.
#[no_mangle]
pub extern "C" fn ws_request_method(req: *const ws_request) -> *const c_char {
    with(req, |r, q| r.keep(q.method()))
}

/// A plain HTTP request's body (its Content-Length bytes; empty for
/// upgrades): writes its length to `*out_len` and returns a pointer to it
/// (not NUL-terminated; non-NULL even when empty). NULL `req` or
/// `out_len` → NULL. Ownership and thread: as `ws_request_path`.
#[no_mangle]
pub unsafe extern "C" fn ws_request_body(req: *const ws_request, out_len: *mut usize) -> *const u8 {
    guard(std::ptr::null(), || {
        // SAFETY: as in `with`; `out_len` is NULL or writable.
        let (Some(r), Some(out_len)) = (unsafe { req.as_ref() }, unsafe { out_len.as_mut() }) else {
            return std::ptr::null();
        };
        // SAFETY: as in `with`.
        let body = unsafe { &*r.request }.body();
        *out_len = body.len();
        if body.is_empty() {
            return c"".as_ptr() as *const u8;
        }
        body.as_ptr()
    })
}

/// The query string after '?', without it; "" when there is none.
/// Ownership and thread: as `ws_request_path`.
#[no_mangle]
pub extern "C" fn ws_request_query(req: *const ws_request) -> *const c_char {
    with(req, |r, q| r.keep(q.query()))
}

/// The value of the first header called `name` (case-insensitive), or NULL
/// when there is none (or `req`/`name` is NULL). Ownership and thread: as
/// `ws_request_path`; `name` is borrowed for the call.
#[no_mangle]
pub unsafe extern "C" fn ws_request_header(req: *const ws_request, name: *const c_char) -> *const c_char {
    if name.is_null() {
        return std::ptr::null();
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    with(req, |r, q| q.header(&name).map_or(std::ptr::null(), |v| r.keep(v)))
}

/// How many header lines the request has (repeated names count each time).
/// NULL `req` → 0. Thread: as `ws_request_path`.
#[no_mangle]
pub unsafe extern "C" fn ws_request_header_count(req: *const ws_request) -> usize {
    guard(0, || {
        // SAFETY: as in `with`: a request handed to the host and still valid.
        unsafe { req.as_ref() }.map_or(0, |r| unsafe { &*r.request }.headers().count())
    })
}

/// The `index`th header line (0 first, in the client's order): writes its
/// name and value to `*out_name` and `*out_value`. Returns WS_OK, or
/// WS_ERR_NULL, WS_ERR_INVALID_ARGUMENT (index past the last header).
/// Ownership and thread: as `ws_request_path` (both strings).
#[no_mangle]
pub unsafe extern "C" fn ws_request_header_at(
    req: *const ws_request,
    index: usize,
    out_name: *mut *const c_char,
    out_value: *mut *const c_char,
) -> ws_result {
    run(|| {
        // SAFETY: as in `with`.
        let r = unsafe { req.as_ref() }.ok_or_else(|| null("req"))?;
        let out_name = out(out_name, "out_name")?;
        let out_value = out(out_value, "out_value")?;
        // SAFETY: as in `with`.
        let (name, value) = unsafe { &*r.request }.headers().nth(index).ok_or_else(|| {
            fail(crate::Error::InvalidArgument(format!("header index {index} is past the last header")))
        })?;
        *out_name = r.keep(name);
        *out_value = r.keep(value);
        Ok(ws_result::WS_OK)
    })
}

/// The client's address and port, e.g. "127.0.0.1:51234" or "[::1]:51234".
/// Ownership and thread: as `ws_request_path`.
#[no_mangle]
pub extern "C" fn ws_request_peer(req: *const ws_request) -> *const c_char {
    with(req, |r, q| r.keep(&q.peer_addr().to_string()))
}

/// The subprotocol the server chose (see `ws_server_set_subprotocols`), or
/// NULL when none was agreed. Ownership and thread: as `ws_request_path`.
#[no_mangle]
pub extern "C" fn ws_request_subprotocol(req: *const ws_request) -> *const c_char {
    with(req, |r, q| q.subprotocol().map_or(std::ptr::null(), |p| r.keep(p)))
}

/// The `index`th subprotocol the client offered (0 first, in its order),
/// or NULL past the last one (or for a NULL `req`). Ownership and thread:
/// as `ws_request_path`.
#[no_mangle]
pub extern "C" fn ws_request_offered_subprotocol(req: *const ws_request, index: usize) -> *const c_char {
    with(req, |r, q| q.offered_subprotocols().nth(index).map_or(std::ptr::null(), |p| r.keep(p)))
}

/// With mutual TLS (`ws_tls_config_set_ca_file`), the subject of the
/// client's certificate in RFC 4514 form (e.g. "CN=alice,O=Example"); NULL
/// otherwise. Ownership and thread: as `ws_request_path`.
#[no_mangle]
pub extern "C" fn ws_request_client_subject(req: *const ws_request) -> *const c_char {
    with(req, |r, q| q.client_subject().map_or(std::ptr::null(), |p| r.keep(p)))
}
