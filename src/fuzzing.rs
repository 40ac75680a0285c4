//! Thin wrappers that let the cargo-fuzz targets in `fuzz/` reach the
//! crate's private readers of untrusted bytes. Compiled only with
//! `--cfg fuzzing` (cargo-fuzz sets it); nothing here is part of the API
//! and nothing here has logic of its own beyond converting types.
use crate::handshake::{self, Incoming, Refusal};
use crate::protocol::{deflate, Limits, Reader};
use crate::Kind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Receives what a [`ProtocolReader`] delivers (the crate's `Sink`).
pub trait Sink {
    /// A whole message.
    fn message(&mut self, data: &[u8], kind: Kind);
    /// A ping's payload.
    fn ping(&mut self, payload: &[u8]);
    /// The client's close frame (None: empty).
    fn close(&mut self, parsed: Option<(u16, &str)>);
}

struct Adapter<'a>(&'a mut dyn Sink);

impl crate::protocol::Sink for Adapter<'_> {
    fn message(&mut self, data: &[u8], kind: Kind) {
        self.0.message(data, kind)
    }
    fn ping(&mut self, payload: &[u8]) {
        self.0.ping(payload)
    }
    fn close(&mut self, parsed: Option<(u16, &str)>) {
        self.0.close(parsed)
    }
}

/// What the handshake negotiated for the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No permessage-deflate.
    Off,
    /// permessage-deflate, no context kept (WS_OPT_DEFLATE_CONTEXT 0).
    NoContext,
    /// permessage-deflate, the client keeps its context (WS_OPT_DEFLATE_CONTEXT 1).
    Context,
}

/// A valid upgrade request offering permessage-deflate, as a browser sends it.
const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// A connection's protocol reader, as the server makes it after a valid
/// handshake (src/server.rs: parse, negotiate, `Reader::new`).
pub struct ProtocolReader {
    reader: Reader,
    /// The answer's Sec-WebSocket-Extensions value, when deflate was agreed.
    pub extensions: Option<String>,
}

impl ProtocolReader {
    /// A reader after the handshake of [`UPGRADE`], with `compression`.
    pub fn after_handshake(compression: Compression) -> ProtocolReader {
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let Ok(Some(Incoming::Upgrade(up))) = handshake::parse(UPGRADE, peer, &[], false) else {
            unreachable!("the built-in upgrade request is valid")
        };
        let offers = up.request.header_values("Sec-WebSocket-Extensions");
        let negotiated = match compression {
            Compression::Off => None,
            Compression::NoContext => deflate::negotiate(offers, false),
            Compression::Context => deflate::negotiate(offers, true),
        };
        let (params, extensions) = negotiated.unzip();
        ProtocolReader { reader: Reader::new(params), extensions }
    }

    /// `Reader::feed`: the bytes consumed, or the close code and reason
    /// the connection fails with.
    pub fn feed(
        &mut self,
        buf: &mut [u8],
        max_frame: usize,
        max_message: usize,
        sink: &mut dyn Sink,
    ) -> Result<usize, (u16, &'static str)> {
        self.reader.feed(buf, Limits { max_frame, max_message }, &mut Adapter(sink)).map_err(|v| (v.code, v.reason))
    }

    /// Size of the partial frame the unconsumed input starts (0: unknown).
    pub fn need(&self) -> usize {
        self.reader.need()
    }
}

/// What `handshake::parse` made of a request head.
#[derive(Debug)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// Refused with this HTTP status and reason.
    Refused(u16, &'static str),
    /// A WebSocket upgrade.
    Upgrade {
        /// The request as the host sees it.
        request: crate::Request,
        /// Sec-WebSocket-Accept.
        accept_key: String,
        /// Bytes after the head.
        leftover: Vec<u8>,
        /// The 101 answer.
        response: Vec<u8>,
        /// permessage-deflate as negotiated without and with context.
        deflate: [Option<String>; 2],
    },
    /// A plain HTTP request.
    Http {
        /// The request.
        request: crate::Request,
        /// Keep the connection.
        keep_alive: bool,
        /// Content-Length.
        content_length: usize,
        /// Bytes after the head.
        leftover: Vec<u8>,
    },
}

/// `handshake::parse` of `buf` (with `http`: plain HTTP is served), then
/// what the server does with an upgrade: the deflate negotiation (both
/// context modes) and the 101 answer; a refusal is encoded as sent.
pub fn parse_request(buf: &[u8], subprotocols: &[String], http: bool) -> Parsed {
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    match handshake::parse(buf, peer, subprotocols, http) {
        Ok(None) => Parsed::Partial,
        Err(Refusal::Status(status, why)) => {
            let _ = handshake::refusal(status, why).encode(false, false);
            Parsed::Refused(status, why)
        }
        Err(Refusal::Io(_)) => unreachable!("parse does no I/O"),
        Ok(Some(Incoming::Upgrade(up))) => {
            let negotiate =
                |keep| deflate::negotiate(up.request.header_values("Sec-WebSocket-Extensions"), keep).map(|(_, a)| a);
            let deflate = [negotiate(false), negotiate(true)];
            let extra: Vec<(String, String)> =
                deflate[1].iter().map(|a| ("Sec-WebSocket-Extensions".to_string(), a.clone())).collect();
            let response = handshake::accept_response(&up, &extra);
            Parsed::Upgrade { request: up.request, accept_key: up.accept_key, leftover: up.leftover, response, deflate }
        }
        Ok(Some(Incoming::Http(r))) => Parsed::Http {
            request: r.request,
            keep_alive: r.keep_alive,
            content_length: r.content_length,
            leftover: r.leftover,
        },
    }
}

/// The static-file resolver: the file under `root` (canonical) that
/// `url_path` names, or None (404).
pub fn resolve_static(root: &Path, url_path: &str) -> Option<PathBuf> {
    crate::http::static_files::resolve(root, url_path)
}

/// A connection's inflater (src/protocol/deflate.rs).
pub struct Inflater(deflate::Inflater);

impl Inflater {
    /// One from this thread's spares, or a new one.
    pub fn take() -> Inflater {
        Inflater(deflate::Inflater::take())
    }

    /// `Inflater::inflate`: the next part of a compressed message onto
    /// `out`, failing past `max`; Err is the close code and reason.
    pub fn inflate(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        max: usize,
        check: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), (u16, &'static str)> {
        self.0.inflate(input, last, out, max, check).map_err(|v| (v.code, v.reason))
    }

    /// Resets it and keeps it as a spare.
    pub fn give_back(self) {
        self.0.give_back()
    }
}

/// The server's compressor (to make valid input for the inflater).
pub struct Compressor(deflate::Compressor);

impl Compressor {
    /// Level 1..=9, window bits 9..=15.
    pub fn new(level: u32, bits: u8) -> Compressor {
        Compressor(deflate::Compressor::new(level, bits))
    }

    /// One message's frame payload; `reset` starts the next afresh.
    pub fn message(&mut self, data: &[u8], out: &mut Vec<u8>, reset: bool) {
        self.0.message(data, out, reset)
    }
}

/// What [`Tls13Pair::server_open`] found in one record.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    Data(Vec<u8>),
    CloseNotify,
    Nothing,
}

/// A server's TLS 1.3 record layer (src/tls13_records.rs) and a client's
/// keyed alike, as after a handshake.
pub struct Tls13Pair {
    server: crate::tls13_records::Records,
    client: crate::tls13_records::Records,
}

fn opened(
    r: Result<Option<(usize, crate::tls13_records::Record<'_>)>, crate::tls13_records::Fatal>,
) -> Result<Option<(usize, Opened)>, Option<u8>> {
    use crate::tls13_records::Record;
    match r {
        Ok(Some((n, Record::Data(d)))) => Ok(Some((n, Opened::Data(d.to_vec())))),
        Ok(Some((n, Record::CloseNotify))) => Ok(Some((n, Opened::CloseNotify))),
        Ok(Some((n, Record::Nothing))) => Ok(Some((n, Opened::Nothing))),
        Ok(None) => Ok(None),
        Err(f) => Err(f.alert),
    }
}

impl Tls13Pair {
    /// With the `suite`th TLS 1.3 suite (mod 3).
    pub fn new(suite: u8) -> Self {
        let (server, client) = crate::tls13_records::Records::pair_of(suite);
        Tls13Pair { server, client }
    }

    /// The client seals `content` with inner content type `typ`.
    pub fn client_seal(&mut self, typ: u8, content: &[u8], out: &mut Vec<u8>) {
        self.client.seal_as_peer(typ, content, out).expect("sealed");
    }

    /// The server opens the first record of `data`: its length and content,
    /// None while incomplete, or the alert it refuses it with.
    pub fn server_open(&mut self, data: &mut [u8]) -> Result<Option<(usize, Opened)>, Option<u8>> {
        opened(self.server.open(data))
    }

    /// The server seals application data, after the KeyUpdate it owes.
    pub fn server_seal(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.server.answer_key_update(out).expect("sealed");
        self.server.seal(data, out).expect("sealed");
    }

    /// The client opens the first record of `data`.
    pub fn client_open(&mut self, data: &mut [u8]) -> Result<Option<(usize, Opened)>, Option<u8>> {
        opened(self.client.open(data))
    }
}
