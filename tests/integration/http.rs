//! Plain HTTP on the WebSocket port, over real sockets: static files (and
//! every way out of their directory), health, the host's handler,
//! keep-alive, pipelining, limits, and an upgrade after HTTP requests.
use crate::common::*;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;
use wsserver::{Config, ConnId, Handler, Request, Server, ServerHandle};

/// Answers /api/* itself (echoing method, path and body) and defers
/// /later to a thread.
struct Api;
impl Handler for Api {
    fn on_http(&self, server: &ServerHandle, id: ConnId, request: &Request) -> Option<u16> {
        match request.path() {
            "/api/teapot" => Some(418),
            "/later" => {
                let s = server.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    s.respond(id, 200, Some("text/plain"), b"later").unwrap();
                });
                None
            }
            p if p.starts_with("/api/") => {
                server.add_answer_header(id, "X-Seen", request.method()).unwrap();
                let body = format!("{} {} {}", request.method(), p, String::from_utf8_lossy(request.body()));
                server.respond(id, 200, Some("text/plain"), body.as_bytes()).unwrap();
                None
            }
            _ => Some(404),
        }
    }
}

struct Site {
    _server: Server,
    port: u16,
    root: std::path::PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn site(tweak: impl FnOnce(&mut Config)) -> Site {
    let base = std::env::temp_dir().join(format!("wsserver-http-{}-{}", std::process::id(), rand_suffix()));
    let root = base.join("www");
    std::fs::create_dir_all(root.join("js")).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html><p>hello</p>").unwrap();
    std::fs::write(root.join("js/app.js"), "console.log(1)").unwrap();
    std::fs::write(base.join("secret.txt"), "SECRET").unwrap();
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
    let mut config = Config { http_handler: true, health_path: Some("/healthz".into()), ..Config::default() };
    config.set_static_dir(root.to_str().unwrap()).unwrap();
    tweak(&mut config);
    let server = Server::new(config, Arc::new(Api));
    let port = server.listen("127.0.0.1", 0).unwrap().port();
    Site { _server: server, port, root: base }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// Reads one response (head and Content-Length body).
fn response(c: &mut RawClient) -> (u16, HttpResponse, Vec<u8>) {
    let r = c.read_response().expect("a response");
    let len: usize = r.header("Content-Length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let body = c.read_exact_bytes(len);
    (r.status, r, body)
}

fn get(port: u16, path: &str) -> (u16, HttpResponse, Vec<u8>) {
    let mut c = RawClient::connect(port);
    c.write(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
    response(&mut c)
}

#[test]
fn static_files_with_types_etags_and_index() {
    let s = site(|_| {});
    let (status, r, body) = get(s.port, "/");
    assert_eq!((status, body.as_slice()), (200, &b"<!doctype html><p>hello</p>"[..]));
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    let etag = r.header("ETag").expect("an ETag").to_string();
    let (_, r, _) = get(s.port, "/js/app.js");
    assert_eq!(r.header("Content-Type"), Some("text/javascript; charset=utf-8"));
    let mut c = RawClient::connect(s.port);
    c.write(format!("GET /index.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes());
    assert_eq!(c.read_response().unwrap().status, 304);
    c.write(b"HEAD /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let head = c.read_response().unwrap();
    assert_eq!((head.status, head.header("Content-Length")), (200, Some("27")));
    c.expect_end();
}

#[test]
fn no_request_leaves_the_directory() {
    let s = site(|c| c.http_handler = false);
    for evil in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2e%2fsecret.txt",
        "/js/..%2f..%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/leak.txt",
        "/index.html%00.txt",
        "/..%5csecret.txt",
    ] {
        let (status, _, body) = get(s.port, evil);
        assert_eq!(status, 404, "{evil}");
        assert!(!String::from_utf8_lossy(&body).contains("SECRET"), "{evil}");
    }
}

#[test]
fn keep_alive_pipelining_health_and_the_hosts_handler() {
    let s = site(|_| {});
    let mut c = RawClient::connect(s.port);
    c.write(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /api/teapot HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /later HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let (status, _, body) = response(&mut c);
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (status, r, body) = response(&mut c);
    assert_eq!((status, body.as_slice()), (200, &b"POST /api/echo hello"[..]));
    assert_eq!(r.header("X-Seen"), Some("POST"));
    assert_eq!(response(&mut c).0, 418);
    let (status, _, body) = response(&mut c);
    assert_eq!((status, body.as_slice()), (200, &b"later"[..]), "answered later from another thread");
    assert_eq!(response(&mut c).0, 404);
    // After HTTP requests, the same connection upgrades.
    c.write(upgrade_request("/chat", "").as_bytes());
    c.expect_upgrade();
    c.text("still here");
}

#[test]
fn limits_close_oversized_malformed_and_idle_connections() {
    let s = site(|c| {
        c.http_max_requests = 2;
        c.http_idle_timeout = Duration::from_millis(200);
        c.http_max_body = 10;
    });
    let mut c = RawClient::connect(s.port);
    c.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
    assert_eq!(response(&mut c).0, 200);
    let (status, last, _) = response(&mut c);
    assert_eq!((status, last.header("Connection")), (200, Some("close")), "the request limit closes");
    c.expect_end();

    let mut c = RawClient::connect(s.port);
    c.write(b"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890");
    assert_eq!(response(&mut c).0, 413);
    c.expect_end();

    let mut c = RawClient::connect(s.port);
    c.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    let _ = c.try_write(&vec![b'a'; 9000]);
    assert_eq!(c.read_response().unwrap().status, 431);

    let mut c = RawClient::connect(s.port);
    c.write(b"NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(c.read_response().unwrap().status, 400);

    let mut c = RawClient::connect(s.port);
    c.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(response(&mut c).0, 200);
    let started = std::time::Instant::now();
    c.expect_end();
    assert!(started.elapsed() < Duration::from_secs(3), "an idle keep-alive connection is closed");
}

#[test]
fn without_http_a_plain_request_is_a_bad_upgrade() {
    let server = Server::new(Config::default(), Arc::new(Api));
    let port = server.listen("127.0.0.1", 0).unwrap().port();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}
