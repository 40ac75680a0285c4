"""Topics, statistics, handshake control (deferred answers, extra headers,
refusal bodies, in handler and asyncio style), allowed origins, upgrade
paths and the full request header list, with real websockets clients."""
import asyncio
import threading

import pytest
from websockets.exceptions import InvalidStatus

import wsserver
from conftest import WAIT, Recorder, client, recv, run, stats_when

E = wsserver.EventType


def by_path(seen):
    """{path: conn} of the opens recorded as (path, conn)."""
    return {path: conn for path, conn in seen.items}


async def refused(srv, path="/", **kw):
    """The InvalidStatus a refused handshake raises."""
    with pytest.raises(InvalidStatus) as e:
        async with client(srv, path, **kw):
            pass
    return e.value.response


def test_publish_to_subscribers_except_one(make_server):
    opened, closed = Recorder(), Recorder()
    srv = make_server(listen=False)

    @srv.on_open
    def on_open(conn, request):
        opened.add((request.path, conn))

    @srv.on_message
    def on_message(conn, data):  # subscribing from inside a handler
        if data.startswith("join "):
            srv.subscribe(conn, data[5:])
        srv.send(conn, "ok " + data)

    srv.on_close(lambda conn, code, reason: closed.add(conn))
    srv.listen("127.0.0.1", 0)

    async def go():
        async with client(srv, "/a") as a, client(srv, "/b") as b:
            c = await client(srv, "/c")
            await opened.await_for(lambda s: len(s) == 3)
            ids = by_path(opened)
            assert srv.subscribers("news") == 0
            srv.subscribe(ids["/a"], "news")
            srv.subscribe(ids["/b"], "news")
            srv.subscribe(ids["/b"], "news")  # twice is fine
            await c.send("join news")
            assert await recv(c) == "ok join news"
            assert srv.subscribers("news") == 3
            assert srv.publish("news", "headline", except_=ids["/a"]) == 2
            assert await recv(b) == "headline" and await recv(c) == "headline"
            srv.send(ids["/a"], "direct")
            assert await recv(a) == "direct"  # a got nothing published before it
            assert srv.publish("news", b"\x00\x01") == 3
            assert [await recv(ws) for ws in (a, b, c)] == [b"\x00\x01"] * 3
            assert srv.publish("nobody", "x") == 0
            with pytest.raises(wsserver.InvalidArgumentError):
                srv.publish("", "x")
            with pytest.raises(wsserver.InvalidArgumentError):
                srv.subscribe(ids["/a"], "")
            srv.unsubscribe(ids["/b"], "news")
            srv.unsubscribe(ids["/b"], "never")  # not subscribed is fine
            assert srv.subscribers("news") == 2
            await c.close()
            await closed.await_for(lambda s: ids["/c"] in s)
            assert srv.subscribers("news") == 1  # c's subscription ended with it
            with pytest.raises(wsserver.ClosedError):
                srv.subscribe(ids["/c"], "news")
            with pytest.raises(wsserver.NoSuchConnError):
                srv.subscribe(ids["/c"] + 1000, "news")
            assert srv.publish("news", "last") == 1
            assert await recv(a) == "last"

    run(go())


def test_stats_move(make_server):
    opened = Recorder()
    srv = make_server(listen=False)

    @srv.on_open
    def on_open(conn, request):
        if request.path == "/no":
            return 403
        opened.add(conn)
        return None

    srv.on_message(lambda conn, data: srv.send(conn, data))
    srv.listen("127.0.0.1", 0)
    zero = srv.stats()
    assert isinstance(zero, wsserver.Stats)
    assert zero.open_connections == zero.handshakes_accepted == zero.messages_in == zero.topics == 0

    async def go():
        async with client(srv) as ws:
            await ws.send("12345")
            assert await recv(ws) == "12345"
            st = await stats_when(srv, lambda st: st.messages_out >= 1 and st.bytes_out > zero.bytes_out)
            assert st.open_connections == 1 and st.handshakes_accepted == 1
            assert st.messages_in == 1 and st.bytes_in == 5
            (conn,) = opened.items
            srv.subscribe(conn, "t1")
            srv.subscribe(conn, "t2")
            st = srv.stats()
            assert st.topics == 2 and st.subscriptions == 2
            assert (await refused(srv, "/no")).status_code == 403
        for _ in range(500):
            st = srv.stats()
            if st.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        assert st.open_connections == 0 and st.topics == 0 and st.subscriptions == 0
        assert st.handshakes_refused == 1

    run(go())


def test_deferred_answers_from_another_thread(make_server):
    """on_open returns DEFER; a worker thread ("checking the token
    elsewhere") accepts with a Set-Cookie, or refuses with a body."""
    waiting = []
    cond = threading.Condition()
    errors = []
    srv = make_server(listen=False)

    @srv.on_open
    def on_open(conn, request):
        with cond:
            waiting.append((conn, request.path))
            cond.notify()
        return wsserver.DEFER

    srv.on_message(lambda conn, data: srv.send(conn, data))
    srv.listen("127.0.0.1", 0)
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            with cond:
                cond.wait_for(lambda: waiting or stop.is_set(), 0.1)
                batch = list(waiting)
                waiting.clear()
            for conn, path in batch:
                try:
                    if path == "/login":
                        srv.add_header(conn, "Set-Cookie", "session=abc123; HttpOnly")
                        srv.accept(conn)
                        with pytest.raises(wsserver.StateError):
                            srv.accept(conn)  # answered already
                    elif path == "/secret":
                        srv.refuse(conn, 401, body="token required", headers={"WWW-Authenticate": "Bearer"})
                    else:
                        srv.refuse(conn, 403)
                except BaseException as e:  # reported by the test thread
                    errors.append(e)

    t = threading.Thread(target=worker)
    t.start()

    async def go():
        async with client(srv, "/login") as ws:
            assert ws.response.status_code == 101
            assert ws.response.headers["Set-Cookie"] == "session=abc123; HttpOnly"
            await ws.send("after defer")
            assert await recv(ws) == "after defer"
        r = await refused(srv, "/secret")
        assert r.status_code == 401 and r.body == b"token required"
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert r.headers["Content-Type"].startswith("text/plain")
        assert (await refused(srv, "/else")).status_code == 403

    try:
        run(go())
    finally:
        stop.set()
        t.join(WAIT)
    assert not errors


def test_answers_inside_on_open(make_server):
    srv = make_server(listen=False)

    @srv.on_open
    def on_open(conn, request):
        if request.path == "/cookie":
            srv.add_header(conn, "Set-Cookie", "early=1")
            return None
        if request.path == "/json":
            srv.refuse(conn, 429, body=b'{"retry":1}', headers=[("Content-Type", "application/json")])
            return None  # the refusal above takes precedence
        if request.path == "/bad":
            with pytest.raises(wsserver.InvalidArgumentError):
                srv.add_header(conn, "Content-Length", "5")  # the server sets it
            with pytest.raises(wsserver.InvalidArgumentError):
                srv.add_header(conn, "X-A", "a\r\nb")
            return 400
        return None

    srv.listen("127.0.0.1", 0)

    async def go():
        async with client(srv, "/cookie") as ws:
            assert ws.response.headers["Set-Cookie"] == "early=1"
        r = await refused(srv, "/json")
        assert r.status_code == 429 and r.body == b'{"retry":1}'
        assert r.headers["Content-Type"] == "application/json"
        assert (await refused(srv, "/bad")).status_code == 400

    run(go())


def test_asyncio_accept_and_refuse_with_headers_and_body():
    async def go():
        async with wsserver.Server(event_queue=True) as srv:
            srv.listen("127.0.0.1", 0)

            async def serve():
                async for ev in srv.events():
                    if ev.type is E.OPEN:
                        if ev.request.path == "/in":
                            ev.accept(headers={"Set-Cookie": "ev=1", "X-Served-By": "asyncio"})
                        else:
                            ev.refuse(401, body="who are you?", headers={"WWW-Authenticate": "Basic"})
                    elif ev.type is E.MESSAGE:
                        await srv.send_async(ev.conn, ev.data)

            task = asyncio.ensure_future(serve())
            async with client(srv, "/in") as ws:
                assert ws.response.headers["Set-Cookie"] == "ev=1"
                assert ws.response.headers["X-Served-By"] == "asyncio"
                await ws.send("hi")
                assert await recv(ws) == "hi"
            r = await refused(srv, "/out")
            assert r.status_code == 401 and r.body == b"who are you?"
            assert r.headers["WWW-Authenticate"] == "Basic"
            await srv.aclose()
            await asyncio.wait_for(task, WAIT)

    run(go())


def test_allowed_origins_and_paths(make_server):
    srv = make_server(allowed_origins=["https://good.example", "http://localhost:8080"], paths=["/chat", "/feed"])

    async def go():
        async with client(srv, "/chat", origin="https://good.example") as ws:
            assert ws.response.status_code == 101
        async with client(srv, "/feed?x=1", origin="HTTPS://GOOD.EXAMPLE"):
            pass  # origin compared ignoring case; the path without the query
        async with client(srv, "/chat"):
            pass  # no Origin (not a browser) passes
        assert (await refused(srv, "/chat", origin="https://evil.example")).status_code == 403
        assert (await refused(srv, "/other", origin="https://good.example")).status_code == 404
        assert (await refused(srv, "/")).status_code == 404

    run(go())
    with pytest.raises(wsserver.InvalidArgumentError):
        wsserver.Server(paths=["no-slash"])
    with pytest.raises(wsserver.InvalidArgumentError):
        wsserver.Server(allowed_origins=[""])
    with pytest.raises(TypeError, match="request_headers"):
        wsserver.Server(request_headers=["x-token"])  # gone: every header is listed now


def test_request_lists_every_header(make_server):
    requests = Recorder()
    srv = make_server(on_open=lambda conn, req: requests.add(req))

    async def go():
        async with client(srv, "/", additional_headers=[("X-First", "1"), ("X-Custom-Thing", "hello world"),
                                                        ("X-First", "2")]):
            pass

    run(go())
    (req,) = requests.wait_for(lambda r: len(r) == 1)
    names = [name for name, _ in req.headers]
    for must in ("Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "User-Agent"):
        assert must in names, req.headers
    i1 = req.headers.index(("X-First", "1"))
    ic = req.headers.index(("X-Custom-Thing", "hello world"))
    i2 = req.headers.index(("X-First", "2"))
    assert i1 < ic < i2  # the client's order, a repeated name each time
    assert req.header("x-first") == "1"  # the first, case-insensitive
    assert req.header("x-nothing") is None
    assert ("Upgrade", "websocket") in req.headers


def test_event_mode_request_lists_every_header():
    async def go():
        async with wsserver.Server(event_queue=True, auto_accept=True) as srv:
            srv.listen("127.0.0.1", 0)
            async with client(srv, "/", additional_headers={"X-Odd-Name": "v"}):
                async for ev in srv.events():
                    if ev.type is E.OPEN:
                        assert ("X-Odd-Name", "v") in ev.request.headers
                        break
            await srv.aclose()

    run(go())
