//! The WebSocket protocol with no I/O (RFC 6455 and RFC 7692): a
//! connection's [`Reader`] is fed the bytes its client sent and says what
//! they mean; [`frame`] encodes what the server sends and [`deflate`]
//! negotiates and runs compression. Every rule lives here, unit-tested;
//! `connection.rs` only moves bytes between a socket and these.
pub(crate) mod deflate;
pub(crate) mod frame;
mod reader;
pub(crate) mod utf8;

pub(crate) use reader::{Limits, Reader, Sink};
