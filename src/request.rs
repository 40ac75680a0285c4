//! What the host learns about a client at open time.
use std::net::SocketAddr;

/// The client's handshake request, valid during [`crate::Handler::on_open`].
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) peer: SocketAddr,
    pub(crate) subprotocol: Option<String>,
    pub(crate) offered: Vec<String>,
    pub(crate) client_subject: Option<String>,
    /// A plain HTTP request's body (empty for upgrades).
    pub(crate) body: Vec<u8>,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            headers: Vec::new(),
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
            subprotocol: None,
            offered: Vec::new(),
            client_subject: None,
            body: Vec::new(),
        }
    }
}

impl Request {
    /// The method: `GET` for upgrades; any for plain HTTP requests.
    pub fn method(&self) -> &str {
        &self.method
    }
    /// A plain HTTP request's body (Content-Length bytes); empty otherwise.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The request path without the query, e.g. `/chat`.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The query string after `?` (without it); empty when there is none.
    pub fn query(&self) -> &str {
        &self.query
    }
    /// The first header with this name (case-insensitive). Values that are
    /// not UTF-8 are given with U+FFFD in place of the bad bytes.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// The values of every header called `name`, in order.
    pub(crate) fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// Every header, in the order the client sent them.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
    /// The client's address and port.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
    /// The subprotocol the server chose from the client's offer, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }
    /// The subprotocols the client offered, in its order.
    pub fn offered_subprotocols(&self) -> impl Iterator<Item = &str> {
        self.offered.iter().map(String::as_str)
    }
    /// With mutual TLS, the subject of the client's certificate (RFC 4514,
    /// e.g. `CN=alice,O=Example`); `None` otherwise.
    pub fn client_subject(&self) -> Option<&str> {
        self.client_subject.as_deref()
    }
}
