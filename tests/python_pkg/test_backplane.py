"""Server(backplane=...): two servers of this process on a real
redis-server (Debian's, started here on a free loopback port), a
websockets client on each; publish on one reaches the other's subscriber,
the statistics count it; bad URLs and a broker nobody runs raise the
library's errors."""
import asyncio
import shutil
import socket
import subprocess
import time

import pytest

import wsserver
from conftest import WAIT, client, recv, run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    assert shutil.which("redis-server"), "redis-server is not installed (scripts/install-deps.sh)"
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.kill()
    proc.wait()


def test_publish_reaches_the_other_servers_subscriber(make_server, redis_port):
    url = f"redis://127.0.0.1:{redis_port}?prefix=py-test:"
    a, b = make_server(backplane=url), make_server(backplane=url)

    @b.on_open
    def join(conn, request):
        b.subscribe(conn, "news")

    async def main():
        async with client(b) as ws:
            deadline = time.monotonic() + WAIT
            got = None
            while got is None and time.monotonic() < deadline:  # until B's subscription is known to A
                a.publish("news", "probe")
                try:
                    got = await asyncio.wait_for(ws.recv(), 0.1)
                except asyncio.TimeoutError:
                    pass
            assert got == "probe"
            while a.stats().backplane_published > b.stats().backplane_received:
                await asyncio.sleep(0.01)  # the other probes, if any, still on their way
            a.publish("news", b"\x00binary")
            a.publish("news", "text")
            rest = [await recv(ws) for _ in range(2)]
            while rest[0] == "probe":
                rest = rest[1:] + [await recv(ws)]
            assert rest == [b"\x00binary", "text"]

    run(main())
    # A's count moves once the broker answered: B's client may have the
    # last message before that.
    deadline = time.monotonic() + WAIT
    while a.stats().backplane_published < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    sa, sb = a.stats(), b.stats()
    assert sa.backplane_connected == sb.backplane_connected == 1
    assert sa.backplane_published >= 3 and sb.backplane_received == sa.backplane_published
    assert sa.backplane_local_only == 0 and sa.backplane_reconnects == 0


def test_backplane_errors(make_server):
    with pytest.raises(wsserver.InvalidArgumentError, match="unknown parameter 'channel'"):
        wsserver.Server(backplane="redis://127.0.0.1:6379?channel=x")
    with pytest.raises(wsserver.InvalidArgumentError, match="redis:// or rediss://"):
        wsserver.Server(backplane="http://127.0.0.1:6379")
    srv = make_server(listen=False, backplane=f"redis://127.0.0.1:{free_port()}")
    with pytest.raises(wsserver.IoError, match="cannot connect"):
        srv.listen("127.0.0.1", 0)
