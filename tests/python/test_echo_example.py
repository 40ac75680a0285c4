"""The C examples, driven by the third-party Python `websockets` client.

build/examples/echo_server: the "listening on ws://HOST:PORT" line, text and
binary echo (small, empty, 100 KB), many concurrent clients, ping/pong, the
close handshake with 1000, a message over the 1 MiB limit (1009), SIGTERM
with clients connected (they get 1001) -> exit status 0, IPv6, bad
arguments, a client that resets while the server writes to it (must not
kill the server with SIGPIPE). build/examples/chat_server: the welcome
message, relay of text to every client (sender included), binary not
relayed, SIGTERM -> 0. build/examples/tls_echo_server (certificates from
scripts/make-certs.sh, skipped without openssl): wss echo, encrypted key,
mutual TLS (good, missing and foreign client certificates), plain ws://
to the TLS port.

Plain unittest; the last line printed is "N passed, M failed".
Run from anywhere: python3 tests/python/test_echo_example.py
"""

import asyncio
import base64
import os
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import unittest

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "build", "examples")
LISTENING = re.compile(r"^listening on (wss?)://(\[[0-9a-fA-F:.]+\]|[0-9.]+|localhost):(\d+)$")
TIMEOUT = 30  # seconds, for any single async test


class Server:
    """An example server process, started on port 0."""

    def __init__(self, name, host="127.0.0.1", port="0", args=None):
        self.path = os.path.join(EXAMPLES, name)
        self.proc = subprocess.Popen(
            [self.path] + (args or []) + [host, port],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        self.line = self._read_line(10)
        m = LISTENING.match(self.line or "")
        if not m:
            self.proc.kill()
            self.proc.wait(10)
            err = self.proc.stderr.read().decode(errors="replace")
            self.stop()
            raise AssertionError(f"{name}: expected 'listening on ws://HOST:PORT', got {self.line!r}; stderr: {err!r}")
        self.scheme = m.group(1)
        self.host = m.group(2)
        self.port = int(m.group(3))
        self.url = f"{self.scheme}://{self.host}:{self.port}"

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return None
            chunk = os.read(fd, 1)
            if not chunk:
                return buf.decode(errors="replace") or None
            buf += chunk
        return buf.decode(errors="replace").rstrip("\n")

    def terminate(self, timeout=10):
        """SIGTERM; returns the exit status (None if it did not exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    def stderr_text(self):
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")


def masked_frame(opcode, payload):
    """One client frame (FIN, masked), for raw-socket tests."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


# What a client sees when the server refuses it (TLS alert, reset, closed
# handshake, bad HTTP answer), as opposed to an assertion failing.
REFUSED = (ssl.SSLError, ConnectionError, EOFError, OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def client(url, **kw):
    kw.setdefault("proxy", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 10)
    kw.setdefault("ping_interval", None)
    return connect(url, **kw)


class EchoServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("echo_server")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_listening_line(self):
        self.assertEqual(self.server.host, "127.0.0.1")
        self.assertGreater(self.server.port, 0)
        self.assertIsNone(self.server.proc.poll())

    def assert_echoes(self, messages, kind):
        """Each message comes back equal and of the same kind (str: text, bytes: binary)."""

        async def go():
            async with client(self.server.url) as ws:
                for msg in messages:
                    await ws.send(msg)
                    got = await ws.recv()
                    self.assertIsInstance(got, kind)
                    self.assertEqual(got, msg)

        run(go())

    def test_text_echo(self):
        self.assert_echoes(["hello", "", "h\u00e9llo \U0001F30D \u20ac", "x" * 126, "y" * 65536], str)

    def test_binary_echo(self):
        self.assert_echoes([b"\x00\x01\xff", b"", bytes(range(256)) * 3], bytes)

    def test_100kb_echo(self):
        async def go():
            async with client(self.server.url) as ws:
                data = bytes((i * 31 + (i >> 8)) & 0xFF for i in range(100 * 1024))
                await ws.send(data)
                self.assertEqual(await ws.recv(), data)
                text = "".join(chr(0x41 + i % 26) for i in range(100 * 1024))
                await ws.send(text)
                self.assertEqual(await ws.recv(), text)

        run(go())

    def test_fragmented_message(self):
        async def go():
            async with client(self.server.url) as ws:
                await ws.send(["frag", "men", "ted"])  # sent as three frames
                self.assertEqual(await ws.recv(), "fragmented")

        run(go())

    def test_many_concurrent_clients(self):
        n_clients, n_messages = 64, 20

        async def one(i):
            async with client(self.server.url) as ws:
                for j in range(n_messages):
                    await ws.send(f"{i}:{j}")
                got = [await ws.recv() for _ in range(n_messages)]
                self.assertEqual(got, [f"{i}:{j}" for j in range(n_messages)])
                return True

        async def go():
            results = await asyncio.gather(*(one(i) for i in range(n_clients)))
            self.assertEqual(sum(results), n_clients)

        run(go())

    def test_ping(self):
        async def go():
            async with client(self.server.url) as ws:
                pong = await ws.ping(b"are you there")
                latency = await asyncio.wait_for(pong, 5)
                self.assertGreaterEqual(latency, 0)
                await ws.send("after ping")
                self.assertEqual(await ws.recv(), "after ping")

        run(go())

    def test_close_handshake_1000(self):
        async def go():
            ws = await client(self.server.url)
            await ws.send("bye")
            self.assertEqual(await ws.recv(), "bye")
            await ws.close(code=1000, reason="done")
            proto = ws.protocol
            self.assertIsNotNone(proto.close_sent)
            self.assertEqual(proto.close_sent.code, 1000)
            self.assertIsNotNone(proto.close_rcvd, "the server answered the close")
            self.assertEqual(proto.close_rcvd.code, 1000)
            self.assertFalse(proto.close_rcvd_then_sent)  # we sent first
            self.assertEqual(ws.close_code, 1000)
            with self.assertRaises(ConnectionClosed):
                await ws.recv()

        run(go())

    def test_message_over_limit_closes_1009(self):
        async def go():
            async with client(self.server.url, max_size=None) as ws:
                await ws.send(b"\x00" * (1024 * 1024 + 1))
                with self.assertRaises(ConnectionClosed) as cm:
                    await ws.recv()
                self.assertIsNotNone(cm.exception.rcvd)
                self.assertEqual(cm.exception.rcvd.code, 1009)

        run(go())

    def test_plain_http_is_refused(self):
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = s.recv(1024)
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:40])


class EchoServerLifecycleTest(unittest.TestCase):
    def test_sigterm_with_clients_exits_0(self):
        server = Server("echo_server")
        try:
            async def go():
                async with client(server.url) as a, client(server.url) as b:
                    await a.send("x")
                    self.assertEqual(await a.recv(), "x")
                    await b.send("y")
                    self.assertEqual(await b.recv(), "y")
                    server.proc.send_signal(signal.SIGTERM)
                    for ws in (a, b):
                        with self.assertRaises(ConnectionClosed) as cm:
                            await ws.recv()
                        self.assertIsNotNone(cm.exception.rcvd)
                        self.assertEqual(cm.exception.rcvd.code, 1001)

            run(go())
            status = server.terminate(10)
            self.assertEqual(status, 0, server.stderr_text())
        finally:
            server.stop()

    def test_sigterm_idle_exits_0(self):
        server = Server("echo_server")
        try:
            t0 = time.monotonic()
            self.assertEqual(server.terminate(10), 0)
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            server.stop()

    def test_ipv6(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6")
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        server = Server("echo_server", "::1")
        try:
            self.assertEqual(server.host, "[::1]")

            async def go():
                async with client(server.url) as ws:
                    await ws.send("v6")
                    self.assertEqual(await ws.recv(), "v6")

            run(go())
            self.assertEqual(server.terminate(10), 0)
        finally:
            server.stop()

    def test_client_reset_while_server_flushes(self):
        """A client that stops reading, sends a close frame and a FIN, then
        resets, must not kill the server (SIGPIPE from a write to a reset
        socket): the examples keep SIGPIPE's default disposition. Uses the
        chat server: another client's messages fill the victim's queue."""
        server = Server("chat_server")
        try:
            victim = socket.socket()
            victim.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            victim.settimeout(10)
            victim.connect(("127.0.0.1", server.port))
            key = base64.b64encode(os.urandom(16)).decode()
            victim.sendall(
                f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = victim.recv(1)
                if not chunk:
                    break
                head += chunk
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)

            async def flood():
                async with client(server.url) as ws:
                    self.assertEqual(await ws.recv(), ChatServerTest.WELCOME)
                    text = "y" * 60000
                    for _ in range(100):  # 6 MB relayed to the victim, who never reads
                        await ws.send(text)
                        self.assertEqual(await ws.recv(), text)

            run(flood())
            victim.sendall(masked_frame(8, struct.pack(">H", 1000)))
            victim.shutdown(socket.SHUT_WR)
            time.sleep(0.2)
            victim.close()  # unread data: RST
            time.sleep(0.5)
            status = server.proc.poll()
            self.assertIsNone(
                status,
                f"chat_server died (status {status}" + (": SIGPIPE)" if status == -signal.SIGPIPE else ")"),
            )

            async def still():
                async with client(server.url) as ws:
                    self.assertEqual(await ws.recv(), ChatServerTest.WELCOME)

            run(still())
            self.assertEqual(server.terminate(10), 0)
        finally:
            server.stop()

    def test_bad_arguments(self):
        path = os.path.join(EXAMPLES, "echo_server")
        for args, code in ([["127.0.0.1", "notaport"], 2], [["127.0.0.1", "99999"], 2], [["no-such-host", "0"], 1]):
            p = subprocess.run([path] + args, capture_output=True, timeout=10)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(p.stdout, b"", args)
            self.assertNotEqual(p.stderr.strip(), b"", args)

    def test_port_in_use(self):
        first = Server("echo_server")
        try:
            p = subprocess.run(
                [os.path.join(EXAMPLES, "echo_server"), "127.0.0.1", str(first.port)], capture_output=True, timeout=10
            )
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(b"in use", p.stderr.lower())
        finally:
            first.stop()


class ChatServerTest(unittest.TestCase):
    WELCOME = "Welcome to the wsserver chat!"

    @classmethod
    def setUpClass(cls):
        cls.server = Server("chat_server")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_welcome(self):
        async def go():
            async with client(self.server.url + "/room") as ws:
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), self.WELCOME)

        run(go())

    def test_relay_to_all(self):
        async def go():
            conns = [await client(self.server.url) for _ in range(4)]
            try:
                for ws in conns:
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), self.WELCOME)
                await conns[0].send("hello from 0")
                await conns[2].send("hello from 2")
                for ws in conns:
                    got = [await asyncio.wait_for(ws.recv(), 5) for _ in range(2)]
                    self.assertEqual(sorted(got), ["hello from 0", "hello from 2"])
                # Per sender, order is kept.
                for i in range(10):
                    await conns[1].send(f"seq {i}")
                for ws in conns:
                    got = [await asyncio.wait_for(ws.recv(), 5) for _ in range(10)]
                    self.assertEqual(got, [f"seq {i}" for i in range(10)])
            finally:
                for ws in conns:
                    await ws.close()

        run(go())

    def test_binary_not_relayed(self):
        async def go():
            async with client(self.server.url) as a, client(self.server.url) as b:
                for ws in (a, b):
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), self.WELCOME)
                await a.send(b"\x01\x02")
                await a.send("text after binary")
                for ws in (a, b):
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "text after binary")

        run(go())

    def test_late_joiner_only_sees_new_messages(self):
        async def go():
            async with client(self.server.url) as a:
                self.assertEqual(await a.recv(), self.WELCOME)
                await a.send("before")
                self.assertEqual(await a.recv(), "before")
                async with client(self.server.url) as b:
                    self.assertEqual(await b.recv(), self.WELCOME)
                    await a.send("after")
                    self.assertEqual(await b.recv(), "after")
                    self.assertEqual(await a.recv(), "after")

        run(go())

    def test_sigterm_exits_0(self):
        server = Server("chat_server")
        try:
            async def go():
                async with client(server.url) as ws:
                    self.assertEqual(await ws.recv(), self.WELCOME)
                    server.proc.send_signal(signal.SIGTERM)
                    with self.assertRaises(ConnectionClosed) as cm:
                        await ws.recv()
                    self.assertEqual(cm.exception.rcvd.code, 1001)

            run(go())
            self.assertEqual(server.terminate(10), 0, server.stderr_text())
        finally:
            server.stop()


class TlsEchoServerTest(unittest.TestCase):
    """build/examples/tls_echo_server over wss://, with certificates from
    scripts/make-certs.sh (skipped without the openssl tool)."""

    @classmethod
    def setUpClass(cls):
        import shutil
        import tempfile

        if not os.path.exists(os.path.join(EXAMPLES, "tls_echo_server")):
            raise unittest.SkipTest("no build/examples/tls_echo_server")
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("no openssl tool to make certificates")
        cls.tmp = tempfile.TemporaryDirectory()
        subprocess.run(
            ["bash", os.path.join(ROOT, "scripts", "make-certs.sh"), cls.tmp.name],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cls.certs = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def cert(self, name):
        return os.path.join(self.certs, name)

    def context(self, client_cert=None):
        ctx = ssl.create_default_context(cafile=self.cert("ca.pem"))
        if client_cert:
            ctx.load_cert_chain(self.cert(client_cert + ".pem"), self.cert(client_cert + ".key"))
        return ctx

    def echo(self, server, **kw):
        async def go():
            async with client(server.url, ssl=self.context(**kw), server_hostname="localhost") as ws:
                await ws.send("secure hello")
                self.assertEqual(await ws.recv(), "secure hello")
                await ws.send(b"\x00" * 100_000)
                self.assertEqual(await ws.recv(), b"\x00" * 100_000)

        run(go())

    def test_wss_echo(self):
        server = Server("tls_echo_server", args=[self.cert("server.pem"), self.cert("server.key")])
        try:
            self.assertEqual(server.scheme, "wss")
            self.echo(server)
            self.assertEqual(server.terminate(10), 0)
        finally:
            server.stop()

    def test_encrypted_key(self):
        server = Server(
            "tls_echo_server", args=[self.cert("server.pem"), self.cert("server-enc.key"), "--key-password", "secret"]
        )
        try:
            self.echo(server)
        finally:
            server.stop()
        p = subprocess.run(
            [os.path.join(EXAMPLES, "tls_echo_server"), self.cert("server.pem"), self.cert("server-enc.key"),
             "127.0.0.1", "0", "--key-password", "wrong"],
            capture_output=True,
            timeout=10,
        )
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stdout, b"")

    def test_mutual_tls(self):
        server = Server(
            "tls_echo_server", args=[self.cert("server.pem"), self.cert("server.key"), "--ca", self.cert("ca.pem")]
        )
        try:
            self.echo(server, client_cert="client")
            for bad in (None, "other-client"):
                # A refused connection, not a wrong echo (AssertionError is an Exception too).
                with self.assertRaises(REFUSED, msg=f"client certificate {bad}"):
                    self.echo(server, client_cert=bad)
            # The server is still fine after the refusals.
            self.echo(server, client_cert="client")
            self.assertEqual(server.terminate(10), 0)
            self.assertIn("CN=alice", server.stderr_text())
        finally:
            server.stop()

    def test_plain_ws_to_tls_port_fails(self):
        server = Server("tls_echo_server", args=[self.cert("server.pem"), self.cert("server.key")])
        try:
            async def go():
                async with client(f"ws://127.0.0.1:{server.port}", open_timeout=5):
                    pass

            with self.assertRaises(REFUSED):
                run(go())
            self.echo(server)
        finally:
            server.stop()


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"websockets {websockets.__version__}: {passed} passed, {failed} failed, {len(result.skipped)} skipped")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
