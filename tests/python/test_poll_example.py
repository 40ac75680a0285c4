"""build/examples/poll_server (event-queue mode on one poll() loop), driven
by the third-party Python `websockets` client.

The "listening on ws://HOST:PORT" line, text and binary echo, a 1 MiB
message (the default limit) echoed back whole in both kinds, one byte more
closed with 1009 while the server carries on, 20 concurrent clients with
their messages in order, 2,000 messages pipelined by one client before it
reads any, a refused handshake that reaches stderr as a WS_EVENT_LOG line,
SIGTERM and SIGINT with clients connected (they get 1001) -> exit status 0,
bad arguments -> 2, a port in use -> 1.

Plain unittest, helpers from test_echo_example.py; the last line printed
is "N passed, M failed". Run from anywhere: python3 tests/python/test_poll_example.py
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from test_echo_example import EXAMPLES, Server, client, run  # noqa: E402

NAME = "poll_server"
MIB = 1024 * 1024


class PollServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(NAME)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.assertIsNone(self.server.proc.poll(), "poll_server died in an earlier test")

    def test_listening_line(self):
        self.assertEqual(self.server.host, "127.0.0.1")
        self.assertGreater(self.server.port, 0)

    def test_text_and_binary_echo(self):
        async def go():
            async with client(self.server.url) as ws:
                for msg in ["hello", "", "h\u00e9llo \U0001F30D", "x" * 70000, b"\x00\x01\xff", b"", bytes(range(256)) * 4]:
                    await ws.send(msg)
                    got = await ws.recv()
                    self.assertIs(type(got), type(msg))
                    self.assertEqual(got, msg)

        run(go())

    def test_1mib_message_echoed_back(self):
        async def go():
            async with client(self.server.url, max_size=None) as ws:
                data = bytes((i * 7 + (i >> 10)) & 0xFF for i in range(MIB))
                await ws.send(data)
                self.assertEqual(await ws.recv(), data)
                text = "".join(chr(0x61 + i % 26) for i in range(MIB))
                await ws.send(text)
                self.assertEqual(await ws.recv(), text)

        run(go())

    def test_over_the_limit_closes_1009_and_the_server_carries_on(self):
        async def go():
            async with client(self.server.url, max_size=None) as ws:
                # The server refuses the frame from its header and closes while
                # the client may still be sending it: the send or the recv
                # ends with the server's close frame.
                with self.assertRaises(ConnectionClosed) as cm:
                    await ws.send(b"\x00" * (MIB + 1))
                    await ws.recv()
                self.assertIsNotNone(cm.exception.rcvd, "the server's close frame arrived")
                self.assertEqual(cm.exception.rcvd.code, 1009)
            async with client(self.server.url) as ws:
                await ws.send("still here")
                self.assertEqual(await ws.recv(), "still here")

        run(go())

    def test_20_concurrent_clients(self):
        n_clients, n_messages = 20, 50

        async def one(i):
            async with client(self.server.url) as ws:
                for j in range(n_messages):
                    await ws.send(f"{i}:{j}" if j % 2 else f"{i}:{j}".encode())
                got = [await ws.recv() for _ in range(n_messages)]
                want = [f"{i}:{j}" if j % 2 else f"{i}:{j}".encode() for j in range(n_messages)]
                self.assertEqual(got, want)
                return i

        async def go():
            done = await asyncio.gather(*(one(i) for i in range(n_clients)))
            self.assertEqual(sorted(done), list(range(n_clients)))

        run(go())

    def test_pipelined_messages_keep_their_order(self):
        n = 2000

        async def go():
            async with client(self.server.url) as ws:
                for j in range(n):
                    await ws.send(f"m{j}")
                got = [await ws.recv() for _ in range(n)]
                self.assertEqual(got, [f"m{j}" for j in range(n)])

        run(go())


class PollServerLifecycleTest(unittest.TestCase):
    def stop_with_clients(self, sig):
        server = Server(NAME)
        try:
            async def go():
                async with client(server.url) as a, client(server.url) as b:
                    for ws, msg in ((a, "x"), (b, b"y")):
                        await ws.send(msg)
                        self.assertEqual(await ws.recv(), msg)
                    server.proc.send_signal(sig)
                    for ws in (a, b):
                        with self.assertRaises(ConnectionClosed) as cm:
                            await ws.recv()
                        self.assertIsNotNone(cm.exception.rcvd, "the server sent a close frame")
                        self.assertEqual(cm.exception.rcvd.code, 1001)

            run(go())
            t0 = time.monotonic()
            status = server.terminate(10)
            self.assertEqual(status, 0, server.stderr_text())
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            server.stop()

    def test_sigterm_with_clients_exits_0(self):
        self.stop_with_clients(signal.SIGTERM)

    def test_sigint_with_clients_exits_0(self):
        self.stop_with_clients(signal.SIGINT)

    def test_sigterm_idle_exits_0(self):
        server = Server(NAME)
        try:
            t0 = time.monotonic()
            self.assertEqual(server.terminate(10), 0)
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            server.stop()

    def test_log_events_go_to_stderr(self):
        """A plain HTTP request is refused with 400; the library reports it
        as a WARN WS_EVENT_LOG, which the example prints to stderr."""
        server = Server(NAME)
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(s.recv(1024).startswith(b"HTTP/1.1 400"))

            async def go():  # the server is still serving
                async with client(server.url) as ws:
                    await ws.send("after")
                    self.assertEqual(await ws.recv(), "after")

            run(go())
            self.assertEqual(server.terminate(10), 0)
            err = server.stderr_text()
            self.assertRegex(err, r"\[warn\] .*400", err)
        finally:
            server.stop()

    def test_bad_arguments(self):
        path = os.path.join(EXAMPLES, NAME)
        for args, code in ([["127.0.0.1", "notaport"], 2], [["127.0.0.1", "70000"], 2], [["no-such-host", "0"], 1]):
            p = subprocess.run([path] + args, capture_output=True, timeout=10)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(p.stdout, b"", args)
            self.assertNotEqual(p.stderr.strip(), b"", args)

    def test_port_in_use(self):
        first = Server(NAME)
        try:
            p = subprocess.run([os.path.join(EXAMPLES, NAME), "127.0.0.1", str(first.port)], capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(b"in use", p.stderr.lower())
        finally:
            first.stop()


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
