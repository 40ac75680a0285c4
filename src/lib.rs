//! wsserver: a WebSocket server (RFC 6455) on tokio, usable as a Rust library
//! and, through [`ffi`], as a C library (`libwsserver.so` / `libwsserver.a`).
//!
//! The Rust API is the real one: [`Server`] owns a runtime and a listener,
//! a [`Handler`] receives connection events, and a [`ServerHandle`] sends,
//! broadcasts and disconnects from any thread. The C ABI in [`ffi`] only
//! checks arguments, converts types, catches panics and calls this API.
#![deny(missing_docs)]

mod backplane;
mod boxed_vec;
mod budget;
mod config;
mod connection;
mod cork;
mod driver;
mod error;
mod events;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod handler;
mod handshake;
mod http;
mod io_threads;
mod options;
mod outbox;
mod outgoing;
mod pool;
mod protocol;
mod registry;
mod request;
mod server;
mod stats;
mod sys;
mod tls;
mod tls13_records;
mod tls_refusal;
mod tls_stream;
mod topics;
mod wakes;

pub mod ffi;

pub use backplane::Backplane;
pub use config::{Config, OverflowPolicy};
pub use error::Error;
pub use events::{Event, Polled};
pub use handler::{ConnId, Handler, Kind, LogLevel};
pub use request::Request;
pub use server::{SendStatus, Server, ServerHandle};
pub use stats::Stats;
pub use tls::{Tls, TlsBuilder};

/// The library version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod header_test {
    /// The committed header must be what cbindgen makes of src/ffi/ now.
    #[test]
    fn committed_header_is_fresh() {
        let fresh = include_str!(concat!(env!("OUT_DIR"), "/wsserver.h"));
        let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/wsserver.h"))
            .expect("include/wsserver.h");
        assert!(fresh == committed, "include/wsserver.h is stale: run `make header` and commit it");
    }
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
