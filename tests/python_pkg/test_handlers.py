"""Handler style: Python callables run on the server's I/O thread."""
import asyncio
import logging
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

import wsserver
from conftest import WAIT, Recorder, client, recv, run


def echo_server(make_server, **kw):
    srv = make_server(listen=False, **kw)

    @srv.on_message
    def echo(conn, data):
        srv.send(conn, data)

    srv.listen("127.0.0.1", 0)
    return srv


def test_echo_text_and_binary(make_server):
    srv = echo_server(make_server)

    async def go():
        async with client(srv) as ws:
            await ws.send("héllo")
            assert await recv(ws) == "héllo"
            await ws.send(b"\x00\xff" * 1000)
            assert await recv(ws) == b"\x00\xff" * 1000
            await ws.send("")
            assert await recv(ws) == ""

    run(go())


def test_handlers_as_constructor_arguments(make_server):
    seen = Recorder()
    srv = make_server(on_open=lambda conn, req: seen.add(("open", conn)),
                      on_close=lambda conn, code, reason: seen.add(("close", conn, code, reason)))

    async def go():
        async with client(srv) as ws:
            await ws.close(4001, "bye")

    run(go())
    assert seen.wait_for(lambda s: len(s) == 2) == [("open", 1), ("close", 1, 4001, "bye")]


def test_chat_relay_reaches_everyone(make_server):
    counts = Recorder()
    srv = make_server(listen=False)

    @srv.on_open
    def joined(conn, request):
        srv.send(conn, f"welcome #{conn}")

    @srv.on_message
    def relay(conn, data):
        counts.add(srv.broadcast(f"#{conn}: {data}"))

    srv.listen("127.0.0.1", 0)

    async def go():
        async with client(srv) as a, client(srv) as b, client(srv) as c:
            for ws in (a, b, c):
                assert (await recv(ws)).startswith("welcome #")
            await a.send("hi all")
            assert [await recv(ws) for ws in (a, b, c)] == ["#1: hi all"] * 3
            await c.send("and back")
            assert [await recv(ws) for ws in (a, b, c)] == ["#3: and back"] * 3

    run(go())
    assert counts.items == [3, 3]


def test_broadcast_except_skips_one(make_server):
    srv = make_server(on_message=lambda conn, data: srv.broadcast(data, except_=conn))

    async def go():
        async with client(srv) as a, client(srv) as b:
            await a.send("only b")
            assert await recv(b) == "only b"
            await b.send("only a")
            assert await recv(a) == "only a"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(a.recv(), 0.3)  # a never got its own "only b"

    run(go())


def test_refusal_with_a_status_and_the_request_seen(make_server):
    requests = Recorder()

    def on_open(conn, request):
        requests.add(request)
        return 403 if request.path == "/private" else None

    srv = make_server(on_open=on_open, subprotocols=["chat.v2", "chat.v1"])

    async def go():
        with pytest.raises(InvalidStatus) as e:
            async with client(srv, "/private"):
                pass
        assert e.value.response.status_code == 403
        async with client(srv, "/room?id=7&x=y", subprotocols=["other", "chat.v1"],
                          additional_headers={"X-Token": "t0k", "Origin": "http://example.test"}) as ws:
            assert ws.subprotocol == "chat.v1"

    run(go())
    refused, accepted = requests.wait_for(lambda r: len(r) == 2)
    assert refused.path == "/private"
    assert accepted.path == "/room" and accepted.query == "id=7&x=y"
    assert accepted.subprotocol == "chat.v1"
    assert accepted.offered_subprotocols == ("other", "chat.v1")
    assert accepted.header("x-token") == "t0k" and accepted.header("Origin") == "http://example.test"
    assert ("X-Token", "t0k") in accepted.headers
    assert accepted.header("Host") == f"127.0.0.1:{srv.port}"
    assert accepted.peer.startswith("127.0.0.1:")
    assert accepted.client_subject is None


def test_a_raising_handler_is_logged_and_the_server_keeps_serving(make_server, caplog):
    lines = Recorder()

    def on_message(conn, data):
        if data == "boom":
            raise ValueError("handler failed on purpose")
        srv.send(conn, data)

    def on_open(conn, request):
        if request.path == "/bad":
            raise RuntimeError("on_open failed on purpose")

    srv = make_server(on_message=on_message, on_open=on_open, on_log=lambda level, msg: lines.add((level, msg)))

    async def go():
        async with client(srv) as ws:
            await ws.send("boom")
            await ws.send("still there?")
            assert await recv(ws) == "still there?"
        with pytest.raises(InvalidStatus) as e:  # a raising on_open refuses with 500
            async with client(srv, "/bad"):
                pass
        assert e.value.response.status_code == 500
        async with client(srv) as ws:  # and the server still serves
            await ws.send("after")
            assert await recv(ws) == "after"

    with caplog.at_level(logging.ERROR, logger="wsserver"):
        run(go())
        errors = lambda lines: [msg for level, msg in lines if level == wsserver.LogLevel.ERROR]  # noqa: E731
        logged = errors(lines.wait_for(lambda l: len(errors(l)) >= 2))
    assert len(logged) == 2
    assert "on_message handler raised" in logged[0] and "ValueError: handler failed on purpose" in logged[0]
    assert "RuntimeError: on_open failed on purpose" in logged[1]
    records = [r for r in caplog.records if r.name == "wsserver"]
    assert [r.exc_info[1].args[0] for r in records] == ["handler failed on purpose", "on_open failed on purpose"]


def test_library_log_lines_go_to_the_logger(make_server, caplog):
    import socket

    srv = make_server(log_level=wsserver.LogLevel.DEBUG)
    with caplog.at_level(logging.DEBUG, logger="wsserver"):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not a WebSocket upgrade: 400
            assert s.recv(100).startswith(b"HTTP/1.1 400")
        deadline = time.monotonic() + WAIT
        while not any(r.name == "wsserver" and r.levelno >= logging.WARNING for r in caplog.records):
            assert time.monotonic() < deadline, "no warning logged for a bad handshake"
            time.sleep(0.02)


def test_on_error_gets_a_ws_error(make_server):
    errors = Recorder()
    srv = make_server(max_message_size=10, on_error=lambda conn, err: errors.add(err))

    async def go():
        async with client(srv) as ws:
            await ws.send("x" * 100)
            with pytest.raises(ConnectionClosed) as e:
                await recv(ws)
            assert e.value.rcvd.code == 1009

    run(go())
    (err,) = errors.wait_for(lambda e: len(e) == 1)
    assert isinstance(err, wsserver.TooBigError) and err.name == "WS_ERR_TOO_BIG" and err.message


def test_backpressure_then_drain_then_dropped(make_server):
    """Sends from the handler, on the I/O thread, so nothing is written while
    it runs: the queue grows deterministically past both limits."""
    chunk = b"x" * 32 * 1024
    outcome = Recorder()
    drains = Recorder()

    def on_message(conn, data):
        statuses = []
        try:
            while True:
                statuses.append(srv.send(conn, chunk))
        except wsserver.DroppedError as e:
            outcome.add((statuses, srv.queued_bytes(conn), e))

    warnings = Recorder()
    srv = make_server(on_message=on_message, on_drain=lambda conn: drains.add(conn),
                      on_log=lambda level, msg: level == wsserver.LogLevel.WARN and warnings.add(msg))
    limits = srv.options

    async def go():
        async with client(srv) as ws:
            await ws.send("go")
            (statuses, queued, err), = await outcome.await_for(lambda o: o)
            got = [await recv(ws) for _ in statuses]
            assert got == [chunk] * len(statuses)
            await drains.await_for(lambda d: d == [1])
            return statuses, queued, err

    statuses, queued, err = run(go())
    assert statuses[0] is wsserver.SendStatus.QUEUED
    assert statuses[-1] is wsserver.SendStatus.BACKPRESSURE
    first_bp = statuses.index(wsserver.SendStatus.BACKPRESSURE)
    assert all(s is wsserver.SendStatus.BACKPRESSURE for s in statuses[first_bp:])
    assert first_bp * len(chunk) < limits["send_queue_limit"] <= (first_bp + 1) * (len(chunk) + 10)
    assert limits["send_queue_limit"] <= queued <= limits["send_queue_hard_limit"]
    assert err.name == "WS_ERR_DROPPED" and err.message
    assert warnings.wait_for(lambda w: w)  # a dropped send is logged (WARN)


def test_close_while_sends_are_in_flight(make_server):
    """A thread sends numbered messages to two clients as fast as it can
    while the server closes: every client sees an unbroken prefix and 1001,
    the sender ends on ClosedError, close() returns within its grace."""
    srv = make_server()
    opened = Recorder()
    srv.on_open(lambda conn, req: opened.add(conn))
    stop_reason = []

    def sender():
        n = 0
        try:
            while True:
                for conn in (1, 2):
                    try:
                        srv.send(conn, str(n))
                    except wsserver.DroppedError:
                        pass  # the client is slower than us: skipped, numbering shows it
                n += 1
        except wsserver.ClosedError as e:
            stop_reason.append(e)

    async def reader(ws):
        seen = []
        try:
            while True:
                seen.append(int(await recv(ws)))
        except ConnectionClosed as e:
            return seen, e.rcvd.code if e.rcvd else None

    async def go():
        async with client(srv) as a, client(srv) as b:
            await opened.await_for(lambda o: len(o) == 2)
            t = threading.Thread(target=sender)
            t.start()
            readers = [asyncio.ensure_future(reader(ws)) for ws in (a, b)]
            await asyncio.sleep(0.2)  # let messages flow (not a synchronisation)
            started = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(None, srv.close, 2.0)
            took = time.monotonic() - started
            results = await asyncio.gather(*readers)
            await asyncio.get_running_loop().run_in_executor(None, t.join, WAIT)
            assert not t.is_alive()
            return results, took

    results, took = run(go())
    assert took < 5.0
    assert len(stop_reason) == 1 and stop_reason[0].name == "WS_ERR_CLOSED"
    for seen, code in results:
        assert code == 1001
        assert seen, "no message arrived before the close"
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
    with pytest.raises(wsserver.ClosedError):
        srv.send(1, "late")


def test_close_from_inside_a_handler(make_server):
    closes = Recorder()
    srv = make_server(on_close=lambda conn, code, reason: closes.add(code))
    srv.on_message(lambda conn, data: srv.close(0.5))

    async def go():
        async with client(srv) as ws:
            await ws.send("stop")
            with pytest.raises(ConnectionClosed) as e:
                await recv(ws)
            assert e.value.rcvd.code == 1001

    run(go())
    assert closes.wait_for(lambda c: c) == [1001]
    srv.close()  # from outside: waits, then nothing more can run
    with pytest.raises(wsserver.ClosedError):
        srv.send(1, "x")


def test_send_async_in_handler_mode_waits_for_the_drain(make_server):
    srv = make_server(send_queue_limit=16 * 1024)
    opened = Recorder()
    srv.on_open(lambda conn, req: opened.add(conn))
    chunk = b"y" * 40 * 1024  # each send alone passes the soft limit

    async def go():
        async with client(srv, max_queue=1) as ws:
            (conn,) = await opened.await_for(lambda o: o)
            statuses = []
            for _ in range(60):  # 2.4 MB, twice the hard limit: only waiting avoids drops
                statuses.append(await asyncio.wait_for(srv.send_async(conn, chunk), WAIT))
                assert srv.queued_bytes(conn) < 2 * len(chunk) + 1024
            got = [await recv(ws) for _ in statuses]
            return statuses, got

    statuses, got = run(go())
    assert wsserver.SendStatus.BACKPRESSURE in statuses
    assert got == [chunk] * 60


def test_a_garbage_collected_server_closes(make_server):
    import gc

    async def go():
        srv = wsserver.Server(on_message=lambda conn, data: None)
        srv.listen("127.0.0.1", 0)
        async with client(srv) as ws:
            del srv
            gc.collect()
            with pytest.raises(ConnectionClosed) as e:
                await recv(ws)
            assert e.value.rcvd.code == 1001

    run(go())
