"""Plain HTTP on the WebSocket port, with the standard library's own HTTP
clients (urllib.request, http.client) over 127.0.0.1: static files, every
way out of their directory, health, the on_http handler (status, tuple,
respond later from a thread, headers), keep-alive on one connection, and
HttpEvent in event mode."""
import asyncio
import http.client
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import wsserver
from conftest import WAIT, Recorder, client, recv, run


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """tmp/www (index.html, hello.txt, js/app.js) and tmp/secret.txt beside it."""
    www = tmp_path / "www"
    (www / "js").mkdir(parents=True)
    (www / "index.html").write_text("<!doctype html><p>hello</p>")
    (www / "hello.txt").write_text("hello, file")
    (www / "js" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("SECRET")
    return www


def fetch(srv, path, data=None, method=None, headers=None):
    """urllib.request: (status, headers, body), HTTP errors included."""
    req = urllib.request.Request(f"http://127.0.0.1:{srv.port}{path}", data=data, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def raw_get(srv, path):
    """http.client with the path sent exactly as given (no normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=WAIT)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_static_files_with_types_index_etag_and_head(make_server, site):
    srv = make_server(static_dir=site)
    status, headers, body = fetch(srv, "/hello.txt")
    assert (status, body) == (200, b"hello, file")
    assert headers["Content-Type"].startswith("text/plain")
    status, headers, body = fetch(srv, "/js/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    status, headers, body = fetch(srv, "/")
    assert (status, body) == (200, b"<!doctype html><p>hello</p>")
    assert headers["Content-Type"].startswith("text/html")
    assert fetch(srv, "/index.html", headers={"If-None-Match": headers["ETag"]})[0] == 304
    status, headers, body = fetch(srv, "/hello.txt", method="HEAD")
    assert (status, headers["Content-Length"], body) == (200, "11", b"")
    assert fetch(srv, "/missing.txt")[0] == 404


@pytest.mark.parametrize("evil", [
    "/..%2fsecret.txt",
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/js/..%2f..%2fsecret.txt",
    "/%252e%252e/secret.txt",
    "/hello.txt%00.html",
])
def test_no_request_leaves_the_directory(make_server, site, evil):
    status, body = raw_get(make_server(static_dir=str(site)), evil)
    assert status == 404 and b"SECRET" not in body


def test_health_path_and_websockets_beside_it(make_server):
    srv = make_server(health_path="/healthz", on_message=lambda c, d: srv.send(c, d))
    assert fetch(srv, "/healthz")[::2] == (200, b"ok\n")
    assert fetch(srv, "/other")[0] == 404

    async def ws():
        async with client(srv, "/chat") as c:
            await c.send("still a websocket server")
            return await recv(c)

    assert run(ws()) == "still a websocket server"
    assert srv.stats().http_requests == 2


def test_bad_static_dir_and_health_path_raise(site):
    with pytest.raises(wsserver.InvalidArgumentError):
        wsserver.Server(static_dir=site / "nope")
    with pytest.raises(wsserver.InvalidArgumentError):
        wsserver.Server(health_path="healthz")


def test_handler_decorator_status_tuple_respond_later_and_headers(make_server):
    srv = make_server(listen=False, health_path="/healthz")
    seen = Recorder()
    workers = []

    @srv.on_http
    def handle(req: wsserver.HttpRequest) -> wsserver.HttpAnswer:
        seen.add(req)
        if req.path == "/teapot":
            return 418
        if req.path == "/echo":
            srv.add_header(req.id, "X-Seen", req.method)
            return 200, "text/plain; charset=utf-8", f"{req.method} {req.path}?{req.query} {req.text}"
        if req.path == "/later":
            def answer() -> None:
                srv.respond(req.id, 202, b'{"later": true}', "application/json", {"Cache-Control": "no-store"})
            t = threading.Timer(0.05, answer)
            workers.append(t)
            t.start()
            return None
        if req.path == "/raise":
            raise RuntimeError("handler failed")
        if req.path == "/bad":
            return "not an answer"  # type: ignore[return-value]
        return 404

    srv.listen("127.0.0.1", 0)
    assert srv.options["http_handler"] == 1, "an on_http handler turns http_handler on"
    status, headers, body = fetch(srv, "/echo?x=1", data=b"posted body", headers={"X-Token": "t0k"})
    assert (status, body) == (200, b"POST /echo?x=1 posted body")
    assert headers["X-Seen"] == "POST" and headers["Content-Type"] == "text/plain; charset=utf-8"
    req = seen.items[0]
    assert isinstance(req, wsserver.HttpRequest) and isinstance(req, wsserver.Request)
    assert (req.method, req.path, req.query, req.body) == ("POST", "/echo", "x=1", b"posted body")
    assert req.header("x-token") == "t0k" and req.peer.startswith("127.0.0.1:") and req.id > 0
    assert fetch(srv, "/teapot")[::2] == (418, b"")
    status, headers, body = fetch(srv, "/later")
    assert (status, body, headers["Content-Type"], headers["Cache-Control"]) == (
        202, b'{"later": true}', "application/json", "no-store")
    assert fetch(srv, "/raise")[0] == 500
    assert fetch(srv, "/bad")[0] == 500
    assert fetch(srv, "/healthz")[::2] == (200, b"ok\n"), "health is answered before the handler"
    assert [r.path for r in seen.items] == ["/echo", "/teapot", "/later", "/raise", "/bad"]
    for t in workers:
        t.join()
    # Answered already, and urllib's connection has gone since: the C suite
    # (tests/c/test_http.c) accepts WS_ERR_STATE or WS_ERR_CLOSED here.
    with pytest.raises((wsserver.StateError, wsserver.ClosedError)):
        srv.respond(seen.items[2].id, 200)
    with pytest.raises(wsserver.NoSuchConnError):
        srv.respond(987654, 200)


def test_handler_keyword_and_keep_alive_on_one_connection(make_server, site):
    ids = Recorder()

    def handle(req: wsserver.HttpRequest) -> wsserver.HttpAnswer:
        ids.add(req.id)
        return 200, "text/plain", req.body[::-1]

    srv = make_server(on_http=handle, static_dir=site, health_path="/healthz")
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=WAIT)
    try:
        conn.request("POST", "/api/reverse", body=b"abc")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"cba")
        sock = conn.sock
        conn.request("GET", "/hello.txt")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"hello, file")
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"ok\n")
        conn.request("POST", "/api/reverse", body=b"xyz")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"zyx")
        assert conn.sock is sock and sock is not None, "every request went over the first connection"
    finally:
        conn.close()
    assert len(set(ids.items)) == 2, "each request has its own id"


def test_on_http_is_refused_in_event_mode():
    with pytest.raises(ValueError):
        wsserver.Server(event_queue=True, on_http=lambda r: 200)


def test_http_events_in_asyncio():
    async def go():
        async with wsserver.Server(event_queue=True, auto_accept=True, http_handler=True) as srv:
            srv.listen("127.0.0.1", 0)
            seen = []

            async def serve():
                async for ev in srv.events():
                    if ev.type is not wsserver.EventType.HTTP:
                        continue
                    assert isinstance(ev, wsserver.HttpEvent)
                    seen.append((ev.request.method, ev.request.path, ev.request.body))
                    if ev.request.path == "/later":
                        asyncio.get_running_loop().call_later(0.05, ev.respond, 200, "later")
                    elif ev.request.path == "/json":
                        ev.respond(201, '{"n": 1}', "application/json", [("X-Mode", "event")])
                    else:
                        ev.respond(404)

            server = asyncio.ensure_future(serve())
            loop = asyncio.get_running_loop()
            a = await loop.run_in_executor(None, fetch, srv, "/json", b"payload")
            b = await loop.run_in_executor(None, fetch, srv, "/later")
            c = await loop.run_in_executor(None, fetch, srv, "/nothing")
            await srv.aclose()
            await asyncio.wait_for(server, WAIT)
            return a, b, c, seen

    a, b, c, seen = run(go())
    assert (a[0], a[2], a[1]["Content-Type"], a[1]["X-Mode"]) == (201, b'{"n": 1}', "application/json", "event")
    assert (b[0], b[2], b[1]["Content-Type"]) == (200, b"later", None)
    assert c[0] == 404
    assert seen == [("POST", "/json", b"payload"), ("GET", "/later", b""), ("GET", "/nothing", b"")]


def test_http_event_type_is_named_not_a_raw_number(make_server):
    srv = make_server(event_queue=True, http_handler=True)
    done = []
    t = threading.Thread(target=lambda: done.append(fetch(srv, "/q?a=1")))
    t.start()
    ev = None
    for _ in range(int(WAIT * 20)):
        ev = srv.poll(0.05)
        if ev is not None and ev.type is not wsserver.EventType.LOG:
            break
    assert ev is not None and ev.type is wsserver.EventType.HTTP and isinstance(ev, wsserver.HttpEvent)
    assert "HTTP" in repr(ev) and ev.request.query == "a=1" and ev.request.id == ev.conn
    ev.respond(200, "fine")
    t.join(WAIT)
    assert done and done[0][::2] == (200, b"fine")
