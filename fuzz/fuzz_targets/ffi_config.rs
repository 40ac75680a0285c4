//! What a C caller configures on a server that is not listening, through
//! the real extern "C" functions: option ids and values
//! (`ws_server_set_option`, `ws_server_get_option`, `ws_option_info`),
//! subprotocol lists, allowed origins, upgrade paths (arrays of C strings,
//! NULL items included), the static directory and the health path.
//!
//! The input is a program: each byte picks an operation, the next ones its
//! arguments. A model kept beside the server says what each call must
//! return: an option reads back as last set, a list is taken exactly when
//! every item is valid, a directory exactly when it is one. Every call
//! returns a documented ws_result, never WS_ERR_PANIC, and every failure
//! leaves a message in ws_last_error().
#![no_main]
use std::collections::HashMap;
use std::ffi::{c_char, CStr, CString};
use wsserver::ffi::*;
use ws_result::*;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn u64(&mut self, n: usize) -> u64 {
        self.bytes(n).iter().fold(0, |v, &b| v << 8 | b as u64)
    }
    /// A C string: a length byte, then that many bytes (the string ends at
    /// the first NUL, as C sees it); None (a NULL pointer) for length 255.
    fn c_string(&mut self) -> Option<CString> {
        match self.byte() {
            255 => None,
            n => {
                let raw = self.bytes(n as usize % 64);
                Some(CString::new(raw.split(|b| *b == 0).next().unwrap()).unwrap())
            }
        }
    }
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(ws_last_error()) }.to_string_lossy().into_owned()
}

fn check(r: ws_result, expected: ws_result, call: &str) {
    assert_ne!(r, WS_ERR_PANIC, "{call} panicked: {}", last_error());
    assert_eq!(r, expected, "{call}: {}", last_error());
    if r != WS_OK {
        assert!(!last_error().is_empty(), "{call} failed with {r:?} and no message");
        assert_ne!(unsafe { CStr::from_ptr(ws_result_name(r as i32)) }.to_bytes(), b"WS_UNKNOWN");
    }
}

/// What a list setter must return for `items`, each checked by `valid`.
fn list_result(items: &[Option<CString>], valid: impl Fn(&str) -> bool) -> ws_result {
    for item in items {
        let Some(item) = item else { return WS_ERR_NULL };
        match item.to_str() {
            Ok(s) if valid(s) => {}
            _ => return WS_ERR_INVALID_ARGUMENT,
        }
    }
    WS_OK
}

/// What a setter taking one optional string must return.
fn string_result(s: &Option<CString>, valid: impl Fn(&str) -> bool) -> ws_result {
    match s.as_ref().map(|s| s.to_str()) {
        None => WS_OK,
        Some(Err(_)) => WS_ERR_INVALID_UTF8,
        Some(Ok(s)) if valid(s) => WS_OK,
        Some(Ok(_)) => WS_ERR_INVALID_ARGUMENT,
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// (default, min, max, only listed values?) of option `id`, if it exists.
fn info(id: u32) -> Option<(u64, u64, u64)> {
    let (mut default, mut min, mut max) = (0, 0, 0);
    let mut name: *const c_char = std::ptr::null();
    let r = unsafe { ws_option_info(id, &mut name, &mut default, &mut min, &mut max, std::ptr::null_mut()) };
    assert!(r == WS_OK || r == WS_ERR_INVALID_ARGUMENT, "ws_option_info({id}): {r:?}");
    (r == WS_OK).then(|| {
        assert!(unsafe { CStr::from_ptr(name) }.to_bytes().starts_with(b"WS_OPT_"));
        assert!(min <= default && default <= max, "option {id}: {min} <= {default} <= {max}");
        (default, min, max)
    })
}

fn option_id(input: &mut Input) -> u32 {
    match input.byte() {
        b @ 0..=239 => (b % 32) as u32,
        _ => input.u64(4) as u32,
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let srv = unsafe { ws_server_new_sized(std::ptr::null(), 0, std::ptr::null_mut()) };
    assert!(!srv.is_null());
    let mut model: HashMap<u32, u64> = HashMap::new();
    let mut steps = 0;
    while !input.0.is_empty() && steps < 64 {
        steps += 1;
        match input.byte() % 10 {
            0 => {
                let id = option_id(&mut input);
                let spec = info(id);
                let value = match (input.byte() % 4, spec) {
                    (0, _) => input.byte() as u64,
                    (1, Some((_, min, max))) => [min, max, max.wrapping_add(1), min.wrapping_sub(1)][input.byte() as usize % 4],
                    _ => input.u64(8),
                };
                let r = unsafe { ws_server_set_option(srv, id, value) };
                assert_ne!(r, WS_ERR_PANIC);
                match spec {
                    None => check(r, WS_ERR_INVALID_ARGUMENT, "set_option (unknown)"),
                    Some((_, min, max)) if value < min || value > max => check(r, WS_ERR_INVALID_ARGUMENT, "set_option"),
                    Some(_) => {
                        // In range: taken, unless the option lists its only values.
                        assert!(r == WS_OK || r == WS_ERR_INVALID_ARGUMENT, "set_option({id}, {value}): {r:?}");
                        check(r, r, "set_option");
                        if r == WS_OK {
                            model.insert(id, value);
                        }
                    }
                }
            }
            1 => {
                let id = option_id(&mut input);
                let mut value = u64::MAX;
                let r = unsafe { ws_server_get_option(srv, id, &mut value) };
                match info(id) {
                    None => {
                        check(r, WS_ERR_INVALID_ARGUMENT, "get_option (unknown)");
                        assert_eq!(value, u64::MAX, "an output written on failure");
                    }
                    Some((default, ..)) => {
                        check(r, WS_OK, "get_option");
                        assert_eq!(value, *model.get(&id).unwrap_or(&default), "option {id} reads back");
                    }
                }
                check(unsafe { ws_server_get_option(srv, id, std::ptr::null_mut()) }, WS_ERR_NULL, "get_option NULL");
            }
            op @ 2..=4 => {
                let count = input.byte() as usize % 6;
                let items: Vec<Option<CString>> = (0..count).map(|_| input.c_string()).collect();
                let ptrs: Vec<*const c_char> =
                    items.iter().map(|s| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())).collect();
                let null_list = input.byte() == 255;
                let list = if null_list { std::ptr::null() } else { ptrs.as_ptr() };
                let (r, expected) = unsafe {
                    match op {
                        2 => (ws_server_set_subprotocols(srv, list, count), list_result(&items, is_token)),
                        3 => (ws_server_set_allowed_origins(srv, list, count), list_result(&items, |s| !s.is_empty())),
                        _ => (ws_server_set_paths(srv, list, count), list_result(&items, |s| s.starts_with('/'))),
                    }
                };
                let expected = if null_list && count > 0 { WS_ERR_NULL } else { expected };
                check(r, expected, ["set_subprotocols", "set_allowed_origins", "set_paths"][op as usize - 2]);
            }
            5 => {
                let dir = input.c_string();
                let r = unsafe { ws_server_set_static_dir(srv, dir.as_ref().map_or(std::ptr::null(), |d| d.as_ptr())) };
                let is_dir = |d: &str| std::fs::canonicalize(d).is_ok_and(|p| p.is_dir());
                check(r, string_result(&dir, is_dir), "set_static_dir");
            }
            6 => {
                let path = input.c_string();
                let r =
                    unsafe { ws_server_set_health_path(srv, path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr())) };
                check(r, string_result(&path, |p| p.starts_with('/')), "set_health_path");
            }
            7 => check(unsafe { ws_server_set_ssl(srv, input.byte() as i32 - 128) }, WS_OK, "set_ssl"),
            8 => {
                let id = option_id(&mut input);
                let r = unsafe {
                    ws_option_info(
                        id,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    )
                };
                check(r, if info(id).is_some() { WS_OK } else { WS_ERR_INVALID_ARGUMENT }, "option_info");
            }
            _ => {
                // NULL servers are refused, not read.
                check(unsafe { ws_server_set_option(std::ptr::null_mut(), 1, 1) }, WS_ERR_NULL, "NULL srv");
                check(unsafe { ws_server_set_paths(std::ptr::null_mut(), std::ptr::null(), 0) }, WS_ERR_NULL, "NULL srv");
            }
        }
    }
    unsafe { ws_server_free(srv) };
});
