//! `ws_tls_config`: gathers certificate, key and CA for `ws_server_set_tls`
//! and `ws_server_reload_tls`. Each setter checks what it can (file,
//! PEM, password, key type) and says what is wrong with which file.
use super::args::{bytes, free_boxed, opt_str, run, str_arg};
use super::error::{done, fail, null, ws_result};
use super::panic::guard;
use crate::TlsBuilder;
use std::ffi::c_char;
use ws_result::*;

/// Certificate, key and optional client CA for TLS. Opaque; create with
/// `ws_tls_config_new`, free with `ws_tls_config_free`. Not thread-safe:
/// use one from one thread at a time.
pub struct ws_tls_config {
    builder: TlsBuilder,
}

fn config<'a>(cfg: *mut ws_tls_config) -> Result<&'a mut TlsBuilder, ws_result> {
    // SAFETY: the header requires a pointer from ws_tls_config_new, not freed.
    unsafe { cfg.as_mut() }.map(|c| &mut c.builder).ok_or_else(|| null("cfg"))
}

fn path<'a>(p: *const c_char) -> Result<&'a str, ws_result> {
    str_arg(p, "path", WS_ERR_INVALID_UTF8)
}

fn password<'a>(p: *const c_char) -> Result<Option<&'a str>, ws_result> {
    opt_str(p, "password", WS_ERR_INVALID_UTF8)
}

/// An empty TLS configuration. The caller owns it and frees it with
/// `ws_tls_config_free` (servers copy what they need). Thread: any.
#[no_mangle]
pub extern "C" fn ws_tls_config_new() -> *mut ws_tls_config {
    guard(std::ptr::null_mut(), || Box::into_raw(Box::new(ws_tls_config { builder: TlsBuilder::new() })))
}

/// Frees a configuration; NULL is ignored. Servers it was given to keep
/// working.
#[no_mangle]
pub unsafe extern "C" fn ws_tls_config_free(cfg: *mut ws_tls_config) {
    // SAFETY: the header requires NULL or a pointer from ws_tls_config_new, freed once.
    guard((), || unsafe { free_boxed(cfg) })
}

/// Loads the certificate chain (leaf first) from the PEM file at `path`.
/// Errors: WS_ERR_NULL, WS_ERR_TLS (unreadable file, no certificate in it,
/// malformed certificate; the message names the file). `path` is borrowed.
#[no_mangle]
pub unsafe extern "C" fn ws_tls_config_set_cert_file(cfg: *mut ws_tls_config, path: *const c_char) -> ws_result {
    run(|| done(config(cfg)?.cert_file(self::path(path)?)))
}

/// Loads the certificate chain from `len` bytes of PEM at `pem` (copied;
/// NULL only with `len` 0, which holds no certificate).
/// Errors: WS_ERR_NULL, WS_ERR_TLS.
#[no_mangle]
pub unsafe extern "C" fn ws_tls_config_set_cert_pem(cfg: *mut ws_tls_config, pem: *const u8, len: usize) -> ws_result {
    run(|| done(config(cfg)?.cert_pem(bytes(pem, len, "pem")?)))
}

/// Loads the private key from the PEM file at `path`: PKCS#8 ("PRIVATE
/// KEY"), PKCS#1 ("RSA PRIVATE KEY"), SEC1 ("EC PRIVATE KEY"), or encrypted
/// PKCS#8 ("ENCRYPTED PRIVATE KEY") decrypted with `password` (NULL when
/// the key is not encrypted). Errors: WS_ERR_NULL, WS_ERR_TLS (unreadable
/// file, no key, wrong password, unsupported key type). Strings borrowed.
#[no_mangle]
pub unsafe extern "C" fn ws_tls_config_set_key_file(
    cfg: *mut ws_tls_config,
    path: *const c_char,
    password: *const c_char,
) -> ws_result {
    run(|| {
        let password = self::password(password)?;
        done(config(cfg)?.key_file(self::path(path)?, password))
    })
}

/// As `ws_tls_config_set_key_file`, from `len` bytes of PEM at `pem`
/// (copied; NULL only with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn ws_tls_config_set_key_pem(
    cfg: *mut ws_tls_config,
    pem: *const u8,
    len: usize,
    password: *const c_char,
) -> ws_result {
    run(|| {
        let password = self::password(password)?;
        done(config(cfg)?.key_pem(bytes(pem, len, "pem")?, password))
    })
}

/// Loads CA certificates from the PEM file at `path`: clients must then
/// present a certificate chaining to one of them (mutual TLS), readable in
/// `on_open` with `ws_request_client_subject`. Errors: WS_ERR_NULL,
/// WS_ERR_TLS.
#[no_mangle]
pub unsafe extern "C" fn ws_tls_config_set_ca_file(cfg: *mut ws_tls_config, path: *const c_char) -> ws_result {
    run(|| done(config(cfg)?.ca_file(self::path(path)?)))
}

/// As `ws_tls_config_set_ca_file`, from `len` bytes of PEM at `pem`
/// (copied; NULL only with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn ws_tls_config_set_ca_pem(cfg: *mut ws_tls_config, pem: *const u8, len: usize) -> ws_result {
    run(|| done(config(cfg)?.ca_pem(bytes(pem, len, "pem")?)))
}

/// Builds the rustls configuration from `cfg`, checking that it is
/// complete and that the key matches the certificate.
pub(crate) fn build(cfg: *const ws_tls_config) -> Result<crate::Tls, ws_result> {
    // SAFETY: the header requires a pointer from ws_tls_config_new, not freed.
    let cfg = unsafe { cfg.as_ref() }.ok_or_else(|| null("cfg"))?;
    cfg.builder.build().map_err(fail)
}
