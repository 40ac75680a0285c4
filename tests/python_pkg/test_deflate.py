"""permessage-deflate through the package, with websockets clients (which
offer it by default): negotiation and its answer, echo in every mode, a
client-chosen server window, per-message opt-out, broadcast to clients with
and without it, and a deflate bomb refused with 1009."""
import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

import wsserver
from conftest import client, recv, run, stats_when

JSON = json.dumps([{"user": f"user{i % 7}", "room": "general", "text": f"message number {i}", "ok": True}
                   for i in range(400)])


def echo_server(make_server, **kw):
    srv = make_server(listen=False, deflate=1, **kw)

    @srv.on_message
    def on_message(conn, data):
        if isinstance(data, str) and data.startswith("bcast "):
            srv.broadcast(data)
        elif isinstance(data, str) and data.startswith("raw "):
            srv.send(conn, data, compress=False)
        else:
            srv.send(conn, data)

    srv.listen("127.0.0.1", 0)
    return srv


def extensions(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions")


def test_off_unless_asked(make_server):
    srv = make_server()

    async def go():
        async with client(srv) as ws:
            assert extensions(ws) is None

    run(go())


@pytest.mark.parametrize("context", [0, 1])
def test_echo_compressed_both_ways(make_server, context):
    srv = echo_server(make_server, deflate_context=context)

    async def go():
        async with client(srv) as ws:
            expected = "permessage-deflate" if context else \
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            assert extensions(ws) == expected
            before = srv.stats().bytes_out
            for _ in range(20):
                await ws.send(JSON)
                assert await recv(ws) == JSON
            sent = srv.stats().bytes_out - before
            assert sent * 5 < 20 * len(JSON), f"{sent} bytes on the wire for {20 * len(JSON)}"
            for msg in ["short", b"\x00\x01" * 5000, "é€" * 4000, ""]:
                await ws.send(msg)
                assert await recv(ws) == msg

    run(go())


def test_client_chosen_server_window(make_server):
    # The client's inflater has a 1 KiB window: a frame compressed with a
    # larger one would fail to inflate there.
    srv = echo_server(make_server)
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=10)

    async def go():
        async with client(srv, extensions=[factory], compression=None) as ws:
            assert "server_max_window_bits=10" in extensions(ws)
            for i in range(10):
                msg = JSON + str(i)
                await ws.send(msg)
                assert await recv(ws) == msg

    run(go())


def test_opt_out_per_message_and_broadcast_to_mixed_clients(make_server):
    srv = echo_server(make_server)

    async def go():
        async with client(srv) as z, client(srv, compression=None) as plain:
            assert extensions(plain) is None
            before = srv.stats().bytes_out
            raw = "raw " + JSON
            await z.send(raw)
            assert await recv(z) == raw
            # Compressed it would be far shorter: this waits until the 10 s bound if it was.
            await stats_when(srv, lambda st: st.bytes_out - before >= len(raw))
            msg = "bcast " + JSON
            await plain.send(msg)
            assert await recv(z) == msg
            assert await recv(plain) == msg

    run(go())


def test_deflate_bomb_is_refused_while_inflating(make_server):
    srv = echo_server(make_server, max_message_size=1 << 20)
    bomb = "a" * (64 << 20)  # 64 MiB of text: about 64 KiB compressed

    async def go():
        async with client(srv, max_size=None) as ws:
            await ws.send(bomb)
            with pytest.raises(ConnectionClosed) as e:
                await recv(ws)
            assert e.value.rcvd is not None and e.value.rcvd.code == 1009
        async with client(srv) as ws:  # the server still serves
            await ws.send("still here")
            assert await recv(ws) == "still here"

    run(go(), timeout=60)
