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

/// Reads the request head from `stream` and checks it.
pub(crate) async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
    subprotocols: &[String],
) -> Result<Upgrade, Refusal> {
    let mut buf = Vec::with_capacity(4096);
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
        if let Some(up) = parse(&buf, peer, subprotocols)? {
            return Ok(up);
        }
    }
}

/// Parses a complete head in `buf`; `Ok(None)` if it is not complete yet.
fn parse(buf: &[u8], peer: SocketAddr, subprotocols: &[String]) -> Result<Option<Upgrade>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::Status(431, "too many headers")),
        Err(_) => return Err(Refusal::Status(400, "malformed HTTP request")),
    };
    if req.method != Some("GET") {
        return Err(Refusal::Status(405, "only GET can upgrade to a WebSocket"));
    }
    if req.version != Some(1) {
        return Err(Refusal::Status(400, "HTTP/1.1 required"));
    }
    let headers: Vec<(String, String)> =
        req.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect();
    let get = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
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
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    Ok(Some(Upgrade {
        request: Request { path, query, headers, peer, subprotocol, offered, client_subject: None },
        accept_key,
        leftover: buf[head_len..].to_vec(),
    }))
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
        let up = parse(GOOD.as_bytes(), peer(), &["chat".into()]).unwrap().unwrap();
        assert_eq!(up.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(up.request.path(), "/chat");
        assert_eq!(up.request.query(), "room=1");
        assert_eq!(up.request.header("host"), Some("x"));
        assert_eq!(up.request.subprotocol(), Some("chat"));
        assert_eq!(up.leftover, b"XY");
        assert!(parse(&GOOD.as_bytes()[..40], peer(), &[]).unwrap().is_none());
    }

    #[test]
    fn refuses_bad_requests_with_the_right_status() {
        let status = |s: String| match parse(s.as_bytes(), peer(), &[]) {
            Err(Refusal::Status(code, _)) => code,
            _ => 0,
        };
        assert_eq!(status(GOOD.replace("GET", "POST")), 405);
        assert_eq!(status(GOOD.replace("Version: 13", "Version: 8")), 426);
        assert_eq!(status(GOOD.replace("Upgrade: websocket", "Upgrade: h2c")), 400);
        assert_eq!(status(GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "short")), 400);
        assert_eq!(status(GOOD.replace("Host: x\r\n", "")), 400);
        assert_eq!(status("GARBAGE\r\n\r\n".into()), 400);
    }
}
