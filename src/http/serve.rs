//! Plain HTTP requests on the WebSocket port: the health endpoint, static
//! files, and the host's HTTP handler, with keep-alive and pipelining. A
//! connection may send HTTP requests and then upgrade.
use super::response::Response;
use super::static_files;
use crate::handshake::HttpRequest;
use crate::stats::Counters;
use crate::{ConnId, Error, LogLevel, Request, ServerHandle};
use atomic_waker::AtomicWaker;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Headers added so far, and the answer once given.
#[derive(Default)]
struct Answer {
    headers: Vec<(String, String)>,
    response: Option<Response>,
    /// Set with the first answer, never cleared: a second one is refused.
    given: bool,
    /// No answer is awaited any more (it came too late: 503 was sent).
    closed: bool,
}

/// A request handed to the host, until it answers.
#[derive(Default)]
struct Pending {
    state: Mutex<Answer>,
    waker: AtomicWaker,
}

/// The requests waiting for the host's answer, by id (ids come from the
/// connections' sequence, so an id names one thing for the server's life).
#[derive(Default)]
pub(crate) struct HostRequests {
    map: Mutex<HashMap<ConnId, Arc<Pending>>>,
}

impl HostRequests {
    fn get(&self, id: ConnId) -> Option<Arc<Pending>> {
        self.map.lock().get(&id).cloned()
    }

    /// Whether `id` is a request waiting for its answer.
    pub fn waiting(&self, id: ConnId) -> bool {
        self.map.lock().contains_key(&id)
    }

    /// The host's answer to request `id`.
    pub fn respond(&self, id: ConnId, response: Response) -> Result<(), Error> {
        let pending = self.get(id).ok_or(Error::Closed(id))?;
        let mut state = pending.state.lock();
        if state.closed {
            return Err(Error::Closed(id));
        }
        if state.given {
            return Err(Error::State(format!("request {id} was already answered")));
        }
        (state.response, state.given) = (Some(response), true);
        drop(state);
        pending.waker.wake();
        Ok(())
    }

    pub fn add_header(&self, id: ConnId, name: &str, value: &str) -> Result<(), Error> {
        super::response::check_header(name, value).map_err(Error::InvalidArgument)?;
        let pending = self.get(id).ok_or(Error::Closed(id))?;
        let mut state = pending.state.lock();
        if state.given {
            return Err(Error::State(format!("request {id} was already answered")));
        }
        state.headers.push((name.to_string(), value.to_string()));
        Ok(())
    }
}

/// Answers one request, then gives back what the client sent after it
/// when the connection stays open for more (keep-alive, under the
/// per-connection request limit), or None when it is done.
pub(crate) async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    server: &ServerHandle,
    stream: &mut S,
    mut req: HttpRequest,
    last: bool,
) -> Option<Vec<u8>> {
    let cfg = server.config();
    let (response, keep) = match read_body(stream, &mut req, cfg.http_max_body).await {
        Ok(()) => (respond_to(server, &req.request).await, req.keep_alive && !last),
        Err(status) => (Response::text(status, "request body too large or cut short"), false),
    };
    Counters::add(&server.inner.counters.http_requests, 1);
    let head = req.request.method() == "HEAD";
    let bytes = response.encode(keep, head);
    Counters::add(&server.inner.counters.bytes_out, bytes.len() as u64);
    let sent = tokio::time::timeout(cfg.close_timeout, stream.write_all(&bytes)).await;
    if keep && matches!(sent, Ok(Ok(()))) {
        return Some(req.leftover);
    }
    let _ = tokio::time::timeout(cfg.close_timeout, stream.shutdown()).await;
    None
}

/// Moves the body (Content-Length bytes) from the leftover and the socket
/// into the request; Err(status) when it is too large or never comes.
async fn read_body<S: AsyncRead + Unpin>(stream: &mut S, req: &mut HttpRequest, max: usize) -> Result<(), u16> {
    let want = req.content_length;
    if want > max {
        return Err(413);
    }
    let read = async {
        while req.leftover.len() < want {
            let mut chunk = vec![0u8; (want - req.leftover.len()).min(64 << 10)];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(400u16),
                Ok(n) => req.leftover.extend_from_slice(&chunk[..n]),
            }
        }
        Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.map_err(|_| 408u16)??;
    req.request.body = req.leftover.drain(..want).collect();
    Ok(())
}

/// The answer: health endpoint, then static files, then the host.
async fn respond_to(server: &ServerHandle, request: &Request) -> Response {
    let cfg = server.config();
    let read_only = matches!(request.method(), "GET" | "HEAD");
    if cfg.health_path.as_deref() == Some(request.path()) {
        return match read_only {
            true => Response::text(200, "ok"),
            false => Response::text(405, "only GET and HEAD here").header("Allow", "GET, HEAD"),
        };
    }
    if let Some(root) = &cfg.static_dir {
        if read_only {
            let r = static_files::serve(root, request.path(), request.header("If-None-Match")).await;
            if r.status != 404 || !cfg.http_handler {
                return r;
            }
        } else if !cfg.http_handler {
            return Response::text(405, "only GET and HEAD here").header("Allow", "GET, HEAD");
        }
    }
    if !cfg.http_handler {
        return Response::text(404, "not found");
    }
    ask_host(server, request).await
}

/// Hands the request to the host and waits (up to the handshake timeout)
/// for its answer.
async fn ask_host(server: &ServerHandle, request: &Request) -> Response {
    let inner = &server.inner;
    let id = inner.new_id();
    let pending = Arc::new(Pending::default());
    inner.http.map.lock().insert(id, pending.clone());
    let answered_now = inner.events.http(server, id, request);
    let wait = std::future::poll_fn(|cx| {
        pending.waker.register(cx.waker());
        match pending.state.lock().response.take() {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    });
    let response = match answered_now {
        Some(status) => Response::new(status),
        None => match tokio::time::timeout(server.config().handshake_timeout, wait).await {
            Ok(r) => r,
            Err(_) => {
                pending.state.lock().closed = true;
                server
                    .log(LogLevel::Warn, &format!("HTTP request {id} for {}: no answer in time, 503", request.path()));
                Response::text(503, "the server did not answer in time")
            }
        },
    };
    inner.http.map.lock().remove(&id);
    let headers = std::mem::take(&mut pending.state.lock().headers);
    let mut response = response;
    response.headers.extend(headers);
    response
}
