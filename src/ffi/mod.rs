//! The C ABI: `ws_server_*`, `ws_request_*` and the error functions.
//!
//! This layer only checks arguments, converts types, catches panics and
//! calls the Rust API. Conventions (README "C API conventions"): fallible
//! calls return a [`ws_result`]; an output pointer is written only on
//! `WS_OK`; `ws_last_error()` gives the message of the calling thread's
//! last failure; no panic crosses this boundary.
#![allow(non_camel_case_types)]
// SAFETY of raw pointers is documented per function in the header.
#![allow(clippy::missing_safety_doc)]

mod args;
mod callbacks;
mod error;
mod panic;
mod request;
mod server;
mod tls;

pub use callbacks::*;
pub use error::*;
pub use request::*;
pub use server::*;
pub use tls::*;
