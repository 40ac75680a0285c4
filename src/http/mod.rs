//! Plain HTTP: responses (shared with the handshake's refusals).
pub(crate) mod response;
