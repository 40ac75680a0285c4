//! PEM blobs a C caller hands over, through the real extern "C" functions:
//! `ws_tls_config_set_{cert,key,ca}_{pem,file}`, then `ws_server_set_tls`
//! and `ws_server_reload_tls` (which build the rustls configuration) on a
//! server that is not listening.
//!
//! Input: certificate, key, CA and password separated by NUL bytes (PEM
//! never holds one; a password is a C string). An empty blob is passed as
//! NULL with length 0; an odd-length input goes through the _file
//! functions (the blobs written to files first).
//!
//! Checks: every call returns a ws_result it documents, never
//! WS_ERR_PANIC; a failure leaves a message in ws_last_error().
#![no_main]
use std::ffi::{CStr, CString};
use wsserver::ffi::*;

fn checked(r: ws_result, allowed: &[ws_result], call: &str) -> ws_result {
    assert_ne!(r, ws_result::WS_ERR_PANIC, "{call} panicked: {:?}", unsafe { CStr::from_ptr(ws_last_error()) });
    assert!(r == ws_result::WS_OK || allowed.contains(&r), "{call} returned {r:?}");
    if r != ws_result::WS_OK {
        let message = unsafe { CStr::from_ptr(ws_last_error()) }.to_bytes();
        assert!(!message.is_empty(), "{call} failed with {r:?} and no message");
        let name = unsafe { CStr::from_ptr(ws_result_name(r as i32)) };
        assert_ne!(name.to_bytes(), b"WS_UNKNOWN");
    }
    r
}

fn ptr(blob: &[u8]) -> *const u8 {
    if blob.is_empty() { std::ptr::null() } else { blob.as_ptr() }
}

/// A file holding `blob`, for the _file functions.
fn file(name: &str, blob: &[u8]) -> CString {
    let path = std::env::temp_dir().join(format!("wsserver-fuzz-pem-{}-{name}", std::process::id()));
    std::fs::write(&path, blob).unwrap();
    CString::new(path.into_os_string().into_encoded_bytes()).unwrap()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use ws_result::*;
    let mut blobs = data.splitn(4, |b| *b == 0);
    let (cert, key, ca) = (blobs.next().unwrap_or(&[]), blobs.next().unwrap_or(&[]), blobs.next().unwrap_or(&[]));
    let password = blobs.next().map(|p| CString::new(p.split(|b| *b == 0).next().unwrap()).unwrap());
    let pw = password.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
    let by_file = data.len() % 2 == 1;
    let tls = [WS_ERR_TLS];
    let key_errors = [WS_ERR_TLS, WS_ERR_INVALID_UTF8];
    unsafe {
        let cfg = ws_tls_config_new();
        assert!(!cfg.is_null());
        if by_file {
            let (c, k, a) = (file("cert", cert), file("key", key), file("ca", ca));
            checked(ws_tls_config_set_cert_file(cfg, c.as_ptr()), &tls, "set_cert_file");
            checked(ws_tls_config_set_key_file(cfg, k.as_ptr(), pw), &key_errors, "set_key_file");
            if !ca.is_empty() {
                checked(ws_tls_config_set_ca_file(cfg, a.as_ptr()), &tls, "set_ca_file");
            }
        } else {
            checked(ws_tls_config_set_cert_pem(cfg, ptr(cert), cert.len()), &tls, "set_cert_pem");
            checked(ws_tls_config_set_key_pem(cfg, ptr(key), key.len(), pw), &key_errors, "set_key_pem");
            if !ca.is_empty() {
                checked(ws_tls_config_set_ca_pem(cfg, ptr(ca), ca.len()), &tls, "set_ca_pem");
            }
        }
        // NULL with a length is refused, not read.
        checked(ws_tls_config_set_cert_pem(cfg, std::ptr::null(), cert.len() + 1), &[WS_ERR_NULL], "NULL pem");
        let srv = ws_server_new_sized(std::ptr::null(), 0, std::ptr::null_mut());
        assert!(!srv.is_null());
        let set = checked(ws_server_set_tls(srv, cfg), &tls, "set_tls");
        let reload = checked(ws_server_reload_tls(srv, cfg), &[WS_ERR_TLS, WS_ERR_STATE], "reload_tls");
        assert_eq!(set == WS_OK, reload == WS_ERR_STATE, "set_tls {set:?} but reload_tls {reload:?}");
        ws_server_free(srv);
        ws_tls_config_free(cfg);
    }
});
