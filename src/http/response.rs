//! HTTP responses as bytes: the status line, headers and body, the same
//! for handshake refusals, the host's HTTP answers and static files.

/// The reason phrase for `status` (RFC 9110), or a generic one.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        s if s < 300 => "OK",
        s if s < 400 => "Redirect",
        s if s < 500 => "Client Error",
        _ => "Server Error",
    }
}

/// A response to write: status, headers in order, body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// A plain-text answer: `text` and a newline.
    pub fn text(status: u16, text: &str) -> Response {
        let mut r = Response::new(status);
        r.headers.push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
        r.body = format!("{text}\n").into_bytes();
        r
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn has(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The bytes on the wire. `keep_alive` false adds `Connection: close`;
    /// `head` leaves the body out (HEAD requests) but keeps its length.
    pub fn encode(&self, keep_alive: bool, head: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (n, v) in &self.headers {
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        let bodiless = self.status == 304 || self.status == 204 || (100..200).contains(&self.status);
        if !bodiless && !self.has("Content-Length") {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        if !keep_alive {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head && !bodiless {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// Whether `name: value` may be added by the host: a token name, a value
/// without CR, LF or NUL (no header injection), and not one the server
/// itself must control.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(crate::handshake::is_token_byte) {
        return Err(format!("header name '{name}' is not an HTTP token"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("header '{name}': the value holds CR, LF or NUL"));
    }
    const OURS: [&str; 6] = [
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Upgrade",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Extensions",
    ];
    if OURS.iter().any(|o| o.eq_ignore_ascii_case(name)) {
        return Err(format!("header '{name}' is set by the server"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_length_connection_and_head() {
        let r = Response::text(404, "nope").header("X-A", "1");
        let wire = String::from_utf8(r.encode(false, false)).unwrap();
        assert_eq!(
            wire,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-A: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n"
        );
        let head = String::from_utf8(r.encode(true, true)).unwrap();
        assert!(head.ends_with("Content-Length: 5\r\n\r\n"), "{head}");
        let not_modified = String::from_utf8(Response::new(304).encode(true, false)).unwrap();
        assert!(!not_modified.contains("Content-Length"), "{not_modified}");
    }

    #[test]
    fn switching_protocols_has_its_phrase() {
        assert!(Response::new(101).encode(true, false).starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    }

    #[test]
    fn refuses_injected_and_reserved_headers() {
        assert!(check_header("Set-Cookie", "a=b; Path=/").is_ok());
        assert!(check_header("X-Evil", "a\r\nInjected: 1").is_err());
        assert!(check_header("Bad Name", "x").is_err());
        assert!(check_header("content-length", "3").is_err());
    }
}
