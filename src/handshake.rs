//! The HTTP/1.1 opening handshake (RFC 6455 §4.2): read and check the
//! client's request, then build the 101 answer or an HTTP error status.
use crate::http::response::Response;
use crate::Request;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head accepted; bigger ones get 431.
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;

/// Why a handshake failed: an HTTP status to answer with, or a dead socket.
#[derive(Debug)]
pub(crate) enum Refusal {
    Status(u16, &'static str),
    Io(std::io::Error),
}

/// What a request head turned out to be.
pub(crate) enum Incoming {
    /// A WebSocket upgrade.
    Upgrade(Upgrade),
    /// A plain HTTP request (only when the server serves HTTP).
    Http(HttpRequest),
}

/// A plain HTTP request: no Upgrade header, no Sec-WebSocket-Key.
pub(crate) struct HttpRequest {
    /// Method, path, query, headers, peer (the body is read later).
    pub request: Request,
    /// The client wants the connection kept for further requests.
    pub keep_alive: bool,
    /// The body's length (Content-Length; 0 without).
    pub content_length: usize,
    /// Bytes after the head: the body's start, pipelined requests.
    pub leftover: Vec<u8>,
}

/// A checked upgrade request.
pub(crate) struct Upgrade {
    pub request: Request,
    pub accept_key: String,
    /// Bytes the client sent after the request head (its first frames).
    pub leftover: Vec<u8>,
}

/// Whether `b` may appear in an HTTP token (RFC 7230 §3.2.6).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn has_token(value: &str, token: &str) -> bool {
    value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        && b"AQgw".contains(&b[21])
}

/// Reads a request head from `stream` (after what `buf` already holds:
/// pipelined bytes) and checks it. Plain HTTP requests are taken only with
/// `http`; otherwise they are refused as a bad upgrade (400).
pub(crate) async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
    subprotocols: &[String],
    http: bool,
    mut buf: Vec<u8>,
) -> Result<Incoming, Refusal> {
    if let Some(incoming) = parse(&buf, peer, subprotocols, http)? {
        return Ok(incoming);
    }
    buf.reserve(4096);
    loop {
        if buf.len() >= MAX_HEAD {
            return Err(Refusal::Status(431, "request head too large"));
        }
        let want = (MAX_HEAD - buf.len()).min(4096);
        let start = buf.len();
        buf.resize(start + want, 0);
        let n = stream.read(&mut buf[start..]).await.map_err(Refusal::Io)?;
        buf.truncate(start + n);
        if n == 0 {
            return Err(Refusal::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if let Some(incoming) = parse(&buf, peer, subprotocols, http)? {
            return Ok(incoming);
        }
    }
}

/// Parses a complete head in `buf`; `Ok(None)` if it is not complete yet.
pub(crate) fn parse(
    buf: &[u8],
    peer: SocketAddr,
    subprotocols: &[String],
    http: bool,
) -> Result<Option<Incoming>, Refusal> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::Status(431, "too many headers")),
        Err(_) => return Err(Refusal::Status(400, "malformed HTTP request")),
    };
    let headers: Vec<(String, String)> =
        req.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect();
    let get = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let method = req.method.unwrap_or("GET").to_string();
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    if http && get("Upgrade").is_none() && get("Sec-WebSocket-Key").is_none() {
        return plain_http(req.version, method, path, query, headers, peer, &buf[head_len..]).map(Some);
    }
    if method != "GET" {
        return Err(Refusal::Status(405, "only GET can upgrade to a WebSocket"));
    }
    if req.version != Some(1) {
        return Err(Refusal::Status(400, "HTTP/1.1 required"));
    }
    if get("Host").is_none() {
        return Err(Refusal::Status(400, "missing Host header"));
    }
    if !get("Upgrade").is_some_and(|v| has_token(v, "websocket")) {
        return Err(Refusal::Status(400, "missing Upgrade: websocket"));
    }
    if !get("Connection").is_some_and(|v| has_token(v, "upgrade")) {
        return Err(Refusal::Status(400, "missing Connection: Upgrade"));
    }
    if get("Sec-WebSocket-Version").map(str::trim) != Some("13") {
        return Err(Refusal::Status(426, "only WebSocket version 13 is supported"));
    }
    let key = match get("Sec-WebSocket-Key").map(str::trim) {
        Some(k) if is_valid_key(k) => k,
        _ => return Err(Refusal::Status(400, "missing or malformed Sec-WebSocket-Key")),
    };
    let accept_key = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let offered: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Protocol"))
        .flat_map(|(_, v)| v.split(',').map(str::trim))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let subprotocol = subprotocols.iter().find(|p| offered.contains(p)).cloned();
    let request = Request { method, path, query, headers, peer, subprotocol, offered, ..Request::default() };
    Ok(Some(Incoming::Upgrade(Upgrade { request, accept_key, leftover: buf[head_len..].to_vec() })))
}

/// Checks a plain HTTP request's framing: HTTP/1.0 or 1.1, a body only by
/// Content-Length (no chunked bodies), keep-alive as the version implies.
fn plain_http(
    version: Option<u8>,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    peer: SocketAddr,
    rest: &[u8],
) -> Result<Incoming, Refusal> {
    let get = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    if get("Transfer-Encoding").is_some() {
        return Err(Refusal::Status(411, "chunked request bodies are not supported: send Content-Length"));
    }
    let content_length = match get("Content-Length").map(str::trim) {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| Refusal::Status(400, "malformed Content-Length"))?,
    };
    let connection = get("Connection").unwrap_or("");
    let keep_alive = match version {
        Some(1) => !has_token(connection, "close"),
        _ => has_token(connection, "keep-alive"),
    };
    if !path.starts_with('/') {
        return Err(Refusal::Status(400, "the request target must be a path"));
    }
    let request = Request { method, path, query, headers, peer, ..Request::default() };
    Ok(Incoming::Http(HttpRequest { request, keep_alive, content_length, leftover: rest.to_vec() }))
}

/// The 101 Switching Protocols answer, with the host's extra headers.
pub(crate) fn accept_response(up: &Upgrade, extra: &[(String, String)]) -> Vec<u8> {
    let mut r = Response::new(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", &up.accept_key);
    if let Some(p) = &up.request.subprotocol {
        r = r.header("Sec-WebSocket-Protocol", p);
    }
    r.headers.extend(extra.iter().cloned());
    r.encode(true, false)
}

/// A refused handshake: `status` with a one-line plain-text reason (and
/// the headers RFC 6455 asks for with 426 and RFC 9110 with 405).
pub(crate) fn refusal(status: u16, why: &str) -> Response {
    let r = Response::text(status, why);
    match status {
        426 => r.header("Sec-WebSocket-Version", "13"),
        405 => r.header("Allow", "GET"),
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }
    const GOOD: &str = "GET /chat?room=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, chat\r\n\r\nXY";

    #[test]
    fn accepts_the_rfc_example() {
        let Some(Incoming::Upgrade(up)) = parse(GOOD.as_bytes(), peer(), &["chat".into()], false).unwrap() else {
            panic!("not an upgrade")
        };
        assert_eq!(up.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(up.request.path(), "/chat");
        assert_eq!(up.request.query(), "room=1");
        assert_eq!(up.request.header("host"), Some("x"));
        assert_eq!(up.request.subprotocol(), Some("chat"));
        assert_eq!(up.leftover, b"XY");
        assert!(parse(&GOOD.as_bytes()[..40], peer(), &[], false).unwrap().is_none());
    }

    #[test]
    fn refuses_bad_requests_with_the_right_status() {
        let status = |s: String| match parse(s.as_bytes(), peer(), &[], false) {
            Err(Refusal::Status(code, _)) => code,
            _ => 0,
        };
        assert_eq!(status(GOOD.replace("GET", "POST")), 405);
        assert_eq!(status(GOOD.replace("Version: 13", "Version: 8")), 426);
        assert_eq!(status(GOOD.replace("Upgrade: websocket", "Upgrade: h2c")), 400);
        assert_eq!(status(GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "short")), 400);
        assert_eq!(status(GOOD.replace("Host: x\r\n", "")), 400);
        assert_eq!(status("GARBAGE\r\n\r\n".into()), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: x\r\n\r\n".into()), 400, "plain HTTP when HTTP is off");
    }

    #[test]
    fn plain_http_requests_when_http_is_on() {
        let http = |s: &str| match parse(s.as_bytes(), peer(), &[], true) {
            Ok(Some(Incoming::Http(r))) => Ok(r),
            Ok(_) => Err(0),
            Err(Refusal::Status(code, _)) => Err(code),
            Err(Refusal::Io(_)) => Err(1),
        };
        let r = http("GET /a/b?x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /next").unwrap();
        assert_eq!((r.request.method(), r.request.path(), r.request.query()), ("GET", "/a/b", "x=1"));
        assert!(r.keep_alive);
        assert_eq!(r.leftover, b"GET /next");
        assert!(!http("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap().keep_alive);
        assert!(!http("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert_eq!(http("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").unwrap().content_length, 5);
        assert_eq!(http("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").err(), Some(411));
        assert_eq!(http("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").err(), Some(400));
        assert!(matches!(parse(GOOD.as_bytes(), peer(), &[], true), Ok(Some(Incoming::Upgrade(_)))));
    }
}
