"""Event style: event_queue=True, read on an asyncio loop through the event
fd (`async for event in server.events()`)."""
import asyncio
import logging
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

import wsserver
from conftest import WAIT, client, recv, run

E = wsserver.EventType


async def serve(srv, handle):
    """Runs `handle(event)` for every event until the server is drained;
    returns every event seen."""
    seen = []
    async for ev in srv.events():
        seen.append(ev)
        result = handle(ev)
        if asyncio.iscoroutine(result):
            await result
    return seen


def test_echo_accept_and_close_events():
    async def go():
        async with wsserver.Server(event_queue=True, subprotocols=["p1"]) as srv:
            srv.listen("127.0.0.1", 0)

            def handle(ev):
                if ev.type is E.OPEN:
                    assert ev.request.path == "/e" and ev.request.offered_subprotocols == ("p0", "p1")
                    ev.accept()
                elif ev.type is E.MESSAGE:
                    srv.send(ev.conn, ev.data)

            server = asyncio.ensure_future(serve(srv, handle))
            async with client(srv, "/e", subprotocols=["p0", "p1"]) as ws:
                assert ws.subprotocol == "p1"
                await ws.send("text")
                assert await recv(ws) == "text"
                await ws.send(b"\x01\x02")
                assert await recv(ws) == b"\x01\x02"
                await ws.close(4000, "done")
            await srv.aclose()
            seen = await asyncio.wait_for(server, WAIT)  # ends by itself once closed and drained
        return [(ev.type, ev.conn, ev.data, ev.code, ev.kind) for ev in seen if ev.type is not E.LOG]

    assert run(go()) == [
        (E.OPEN, 1, "", 0, None),
        (E.MESSAGE, 1, "text", 0, wsserver.Kind.TEXT),
        (E.MESSAGE, 1, b"\x01\x02", 0, wsserver.Kind.BINARY),
        (E.CLOSE, 1, "done", 4000, None),
    ]


def test_refuse_with_a_status_and_accept_with_a_subprotocol():
    async def go():
        async with wsserver.Server(event_queue=True) as srv:
            srv.listen("127.0.0.1", 0)

            def handle(ev):
                if ev.type is E.OPEN:
                    if ev.request.path == "/no":
                        ev.refuse(401)
                    else:
                        ev.accept("b")  # one the client offered, the server having none
                        with pytest.raises(wsserver.StateError):
                            ev.accept()  # answered already
                        with pytest.raises(wsserver.InvalidArgumentError):
                            srv.refuse(ev.conn, 200)

            server = asyncio.ensure_future(serve(srv, handle))
            with pytest.raises(InvalidStatus) as e:
                async with client(srv, "/no"):
                    pass
            assert e.value.response.status_code == 401
            async with client(srv, "/yes", subprotocols=["a", "b"]) as ws:
                assert ws.subprotocol == "b"
            await srv.aclose()
            seen = await asyncio.wait_for(server, WAIT)
        closes = [ev.conn for ev in seen if ev.type is E.CLOSE]
        assert closes == [2]  # a refused connection never opened, so it never closes

    run(go())


def test_auto_accept_and_disconnect():
    async def go():
        async with wsserver.Server(event_queue=True, auto_accept=True) as srv:
            srv.listen("127.0.0.1", 0)

            def handle(ev):
                if ev.type is E.OPEN:
                    with pytest.raises(wsserver.StateError):
                        ev.accept()  # auto_accept answered it
                    srv.send(ev.conn, "hello")
                elif ev.type is E.MESSAGE:
                    srv.disconnect(ev.conn, 4002, "as asked")

            server = asyncio.ensure_future(serve(srv, handle))
            async with client(srv) as ws:
                assert await recv(ws) == "hello"
                await ws.send("kick me")
                with pytest.raises(ConnectionClosed) as e:
                    await recv(ws)
                assert (e.value.rcvd.code, e.value.rcvd.reason) == (4002, "as asked")
            await srv.aclose()
            await asyncio.wait_for(server, WAIT)

    run(go())


def test_error_and_log_events(caplog):
    async def go():
        async with wsserver.Server(event_queue=True, auto_accept=True, max_message_size=8) as srv:
            srv.listen("127.0.0.1", 0)
            server = asyncio.ensure_future(serve(srv, lambda ev: None))
            async with client(srv) as ws:
                await ws.send("far too long")
                with pytest.raises(ConnectionClosed):
                    await recv(ws)
            await srv.aclose()
            return await asyncio.wait_for(server, WAIT)

    with caplog.at_level(logging.INFO, logger="wsserver"):
        seen = run(go())
    (err,) = [ev for ev in seen if ev.type is E.ERROR]
    assert isinstance(err.error, wsserver.TooBigError) and err.error.message == err.data
    close = [ev for ev in seen if ev.type is E.CLOSE][0]
    assert close.code == 1009
    logs = [ev for ev in seen if ev.type is E.LOG]
    assert logs and logs[0].conn == 0 and "listening" in logs[0].data
    assert any(r.name == "wsserver" and "listening" in r.getMessage() for r in caplog.records)


def test_send_async_waits_for_drain_and_never_drops():
    """60 x 40 KiB to one client that reads slowly: send_async waits at each
    backpressure, so nothing passes the hard limit (a plain send loop would
    be refused with DroppedError past 1 MiB)."""
    chunk = b"z" * 40 * 1024

    async def go():
        async with wsserver.Server(event_queue=True, auto_accept=True, send_queue_limit=16 * 1024) as srv:
            srv.listen("127.0.0.1", 0)
            opened = asyncio.get_running_loop().create_future()
            statuses = []

            async def handle(ev):
                if ev.type is E.OPEN:
                    opened.set_result(ev.conn)

            async def producer():
                conn = await opened
                for _ in range(60):
                    statuses.append(await srv.send_async(conn, chunk))
                    assert srv.queued_bytes(conn) < 2 * len(chunk) + 1024

            server = asyncio.ensure_future(serve(srv, handle))
            async with client(srv, max_queue=1) as ws:
                prod = asyncio.ensure_future(producer())
                got = []
                for _ in range(60):
                    got.append(await recv(ws))
                    await asyncio.sleep(0.001)  # a slow reader (pacing, not synchronisation)
                await asyncio.wait_for(prod, WAIT)
            await srv.aclose()
            seen = await asyncio.wait_for(server, WAIT)
        assert got == [chunk] * 60
        assert wsserver.SendStatus.BACKPRESSURE in statuses
        assert any(ev.type is E.DRAIN for ev in seen)

    run(go(), timeout=60)


def test_send_async_inside_the_event_loop_body_does_not_deadlock():
    """Awaiting a drain in the body of `async for` must still work: the pump
    reads the fd on its own, not only when the loop asks for the next event."""
    chunk = b"w" * 100 * 1024

    async def go():
        async with wsserver.Server(event_queue=True, auto_accept=True) as srv:
            srv.listen("127.0.0.1", 0)
            done = asyncio.get_running_loop().create_future()

            async def handle(ev):
                if ev.type is E.MESSAGE:
                    for _ in range(20):  # 2 MB, past the hard limit unless drained
                        await srv.send_async(ev.conn, chunk)
                    done.set_result(None)

            server = asyncio.ensure_future(serve(srv, handle))
            async with client(srv) as ws:
                await ws.send("go")
                got = [await recv(ws) for _ in range(20)]
                await asyncio.wait_for(done, WAIT)
            await srv.aclose()
            await asyncio.wait_for(server, WAIT)
        assert got == [chunk] * 20

    run(go(), timeout=60)


def test_close_while_send_async_waits():
    """A client that never reads: send_async keeps waiting on backpressure;
    closing the server releases the waiting send, the next one raises
    ClosedError, and events() ends after the CLOSE event."""
    chunk = b"q" * 64 * 1024

    async def go():
        async with wsserver.Server(event_queue=True, auto_accept=True, send_queue_limit=1024) as srv:
            srv.listen("127.0.0.1", 0)
            opened = asyncio.get_running_loop().create_future()

            def handle(ev):
                if ev.type is E.OPEN:
                    opened.set_result(ev.conn)

            server = asyncio.ensure_future(serve(srv, handle))
            async with client(srv, max_queue=1, close_timeout=0.5) as ws:
                conn = await asyncio.wait_for(opened, WAIT)
                sent = [0]

                async def flood():
                    while True:
                        await srv.send_async(conn, chunk)
                        sent[0] += 1

                sender = asyncio.ensure_future(flood())
                while not (sent[0] >= 8 and srv.waiting_for_drain()):  # data in flight, a send waiting
                    await asyncio.sleep(0.005)
                started = time.monotonic()
                await srv.aclose(grace=0.5)
                assert time.monotonic() - started < 3
                with pytest.raises(wsserver.ClosedError):
                    await asyncio.wait_for(sender, WAIT)
                seen = await asyncio.wait_for(server, WAIT)
                assert not srv.waiting_for_drain()
        assert [ev.conn for ev in seen if ev.type is E.CLOSE] == [1]

    run(go())


def test_poll_without_asyncio():
    import threading

    srv = wsserver.Server(event_queue=True, auto_accept=True)
    with srv:
        with pytest.raises(wsserver.StateError):
            srv.event_fd()  # not listening yet
        srv.listen("127.0.0.1", 0)
        assert srv.poll(0) is not None  # the "listening on" log line
        assert srv.poll(0.05) is None  # nothing else waits
        got = []

        def poller():
            while True:
                try:
                    ev = srv.poll(None)
                except wsserver.ClosedError:
                    return
                got.append(ev.type)
                if ev.type is E.MESSAGE:
                    srv.send(ev.conn, ev.data.upper())

        t = threading.Thread(target=poller)
        t.start()

        async def go():
            async with client(srv) as ws:
                await ws.send("shout")
                assert await recv(ws) == "SHOUT"

        run(go())
        srv.close()
        t.join(WAIT)
        assert not t.is_alive()
    assert got[:2] == [E.OPEN, E.MESSAGE] and got[-1] is E.CLOSE


def test_events_need_event_mode_and_handlers_need_callback_mode(make_server):
    srv = make_server()

    async def go():
        with pytest.raises(wsserver.StateError):
            srv.events()

    run(go())
    with pytest.raises(ValueError, match="on_message never runs with event_queue=True"):
        wsserver.Server(event_queue=True, on_message=print)
    with wsserver.Server(event_queue=True, on_log=print) as evq:  # log lines still reach on_log
        with pytest.raises(ValueError):
            evq.on_open(print)


def test_a_server_dropped_after_its_loop_ended_is_freed():
    """No `async with`: the pump still holds the server when asyncio.run
    returns; collecting it afterwards must still close the C server."""
    import gc
    import socket

    async def go():
        srv = wsserver.Server(event_queue=True, auto_accept=True)
        srv.listen("127.0.0.1", 0)
        async for ev in srv.events():
            if ev.type is E.LOG:
                return srv.port

    port = run(go())
    gc.collect()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
