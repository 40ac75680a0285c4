//! The C ABI: `ws_server_*`, `ws_conn_*`, `ws_event_*`, `ws_request_*`,
//! `ws_tls_config_*` and the error functions.
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
mod backplane;
mod callbacks;
mod conn;
mod error;
mod event;
mod panic;
mod request;
mod server;
mod stats;
mod tls;
mod topics;

pub use backplane::*;
pub use callbacks::*;
pub use conn::*;
pub use error::*;
pub use event::*;
pub use request::*;
pub use server::*;
pub use stats::*;
pub use tls::*;
pub use topics::*;
