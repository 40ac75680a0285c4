//! Plain HTTP on the WebSocket port: responses (shared with the
//! handshake's refusals), static files, and the serving of requests.
pub(crate) mod response;
pub(crate) mod serve;
pub(crate) mod static_files;
