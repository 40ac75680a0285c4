"""wss:// through the C ABI with Python's `websockets` and `ssl`: the
tls_echo_server example and tests/tls/tls_reload_server.c (reload from a
callback, mutual TLS, certificate and key from memory).
Usage: test_wss.py CERTDIR BUILDDIR"""
import asyncio
import os
import re
import socket
import ssl
import subprocess
import sys
import unittest

import websockets

CERTS, BUILD = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "build", "examples", "tls_echo_server")
RELOAD = os.path.join(BUILD, "tls_reload_server")


def cert(name):
    return os.path.join(CERTS, name)


class Server:
    """Runs a server binary until its 'listening on wss://' line; stops it with SIGTERM."""

    def __init__(self, *argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on wss://127\.0\.0\.1:(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            raise AssertionError(f"no listening line: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(m.group(1))

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(timeout=10)
        self.output = self.proc.stdout.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


def context(client=None):
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    if client:
        ctx.load_cert_chain(cert(client + ".pem"), cert(client + ".key"))
    return ctx


def subject_of(ws):
    peer = ws.transport.get_extra_info("peercert")
    return dict(x[0] for x in peer["subject"])


async def echo(ws, text):
    await ws.send(text)
    return await asyncio.wait_for(ws.recv(), 5)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def with_reload_server(test, go, *options):
    """Runs the coroutine go(server) against tls_reload_server CERTS *options;
    the server must then exit 0 on SIGTERM."""
    srv = Server(RELOAD, CERTS, *options)
    try:
        run(go(srv))
    finally:
        test.assertEqual(srv.stop(), 0)


class ExampleTest(unittest.TestCase):
    def test_encrypted_key_with_the_right_password_echoes(self):
        srv = Server(EXAMPLE, cert("server.pem"), cert("server-enc.key"), "127.0.0.1", "0", "--key-password", "secret")
        try:
            async def go():
                async with websockets.connect(f"wss://localhost:{srv.port}/", ssl=context()) as ws:
                    self.assertEqual(await echo(ws, "héllo wss"), "héllo wss")
                    big = os.urandom(100_000)
                    await ws.send(big)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), big)
            run(go())
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_wrong_password_fails_at_startup_naming_the_file(self):
        p = subprocess.run([EXAMPLE, cert("server.pem"), cert("server-enc.key"), "127.0.0.1", "0",
                            "--key-password", "nope"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("server-enc.key", p.stderr)
        self.assertIn("wrong password", p.stderr)
        self.assertEqual(p.stdout, "")


class ReloadTest(unittest.TestCase):
    def test_reload_from_a_callback_keeps_open_connections(self):
        async def go(srv):
            url = f"wss://localhost:{srv.port}/"
            async with websockets.connect(url, ssl=context()) as old:
                self.assertEqual(subject_of(old)["organizationName"], "wsserver")
                self.assertEqual(await echo(old, "reload-good"), "reload:WS_OK")
                async with websockets.connect(url, ssl=context()) as new:
                    self.assertEqual(subject_of(new)["organizationName"], "wsserver renewed")
                    self.assertEqual(await echo(new, "new"), "new")
                self.assertEqual(await echo(old, "old still open"), "old still open")
                bad = await echo(old, "reload-bad")
                self.assertTrue(bad.startswith("reload:WS_ERR_TLS:"), bad)
                self.assertIn("does not match", bad)
                async with websockets.connect(url, ssl=context()) as after:
                    self.assertEqual(subject_of(after)["organizationName"], "wsserver renewed")

        with_reload_server(self, go)

    def test_sends_from_a_host_thread_reach_a_wss_client_in_order(self):
        """ws_server_send from a thread of the host's own, not a callback: the
        connection (on its I/O thread's driver) is woken from outside and
        every message arrives intact and in order, records split and all."""
        async def go(srv):
            async with websockets.connect(f"wss://localhost:{srv.port}/", ssl=context(), max_size=None) as ws:
                await ws.send("push:300")
                for i in range(300):
                    msg = await asyncio.wait_for(ws.recv(), 10)
                    want = 20000 if i % 2 else 1 + i % 7
                    self.assertEqual((len(msg), set(msg)), (want, {i % 256}), f"message {i}")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "pushed:WS_OK")
                self.assertEqual(await echo(ws, "after"), "after")

        with_reload_server(self, go)

    def test_hostile_tls_clients_are_dropped_and_others_carry_on(self):
        async def go(srv):
            async with websockets.connect(f"wss://localhost:{srv.port}/", ssl=context()) as good:
                for payload in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\xff\xff garbage", b"\x16\x03"):
                    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
                    writer.write(payload)
                    await writer.drain()
                    # dropped: EOF (or reset) within the 1 s handshake timeout + margin
                    try:
                        while await asyncio.wait_for(reader.read(1024), 4):
                            pass
                    except ConnectionResetError:
                        pass
                    writer.close()
                self.assertEqual(await echo(good, "still fine"), "still fine")

        with_reload_server(self, go)


class PemFromMemoryTest(unittest.TestCase):
    def test_certificate_and_encrypted_key_from_memory_serve_wss(self):
        async def go(srv):
            async with websockets.connect(f"wss://localhost:{srv.port}/", ssl=context()) as ws:
                self.assertEqual(subject_of(ws)["organizationName"], "wsserver")
                self.assertEqual(await echo(ws, "from memory"), "from memory")

        with_reload_server(self, go, "--pem")


class MutualTlsTest(unittest.TestCase):
    def test_client_certificates_with_the_ca_from_a_file(self):
        self.check_client_certificates("--ca")

    def test_client_certificates_with_the_ca_from_memory(self):
        self.check_client_certificates("--ca-pem")

    def check_client_certificates(self, ca_option):
        async def go(srv):
            url = f"wss://localhost:{srv.port}/"
            async with websockets.connect(url, ssl=context("client")) as ws:
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "subject:O=wsserver tests,CN=alice")
                self.assertEqual(await echo(ws, "mutual"), "mutual")
            for who in (None, "other-client"):
                with self.assertRaises((ssl.SSLError, ConnectionError, websockets.exceptions.WebSocketException,
                                        EOFError, OSError), msg=f"client {who} must be refused"):
                    async with websockets.connect(url, ssl=context(who), open_timeout=5) as ws:
                        await asyncio.wait_for(ws.recv(), 5)

        with_reload_server(self, go, ca_option)


class AlertTest(unittest.TestCase):
    def test_a_refused_client_is_told_why_with_a_tls_alert(self):
        """Not a bare closed socket: the client's TLS stack reads the server's
        certificate_required alert (the server drains the socket before it
        closes, so the client's request does not turn the close into a reset)."""
        async def go(srv):
            def handshake_and_request():
                # Blocking ssl: asyncio reports the alert as a plain end of stream.
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
                    with context().wrap_socket(raw, server_hostname="localhost") as tls:
                        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                        return tls.recv(1024)

            with self.assertRaises(ssl.SSLError) as caught:
                await asyncio.get_running_loop().run_in_executor(None, handshake_and_request)
            self.assertIn("CERTIFICATE_REQUIRED", str(caught.exception).upper().replace(" ", "_"))

        with_reload_server(self, go, "--ca")


class RefusalTest(unittest.TestCase):
    """Each client certificate the verifier refuses (OpenSSL on the client
    side, which sends even a v1 one) is logged through on_log with the
    reason in plain words and what to do."""

    CASES = [
        ("client-v1", ["X.509 version 1", "what to do: issue a version 3 certificate", "-extfile"]),
        ("client-expired", ["certificate expired on 2021-01-01", "what to do: issue the client a new certificate"]),
        ("client-future", ["not valid before 2090-01-01", "what to do: check the clocks"]),
        ("client-serverauth", ["not allowed for client authentication", "extendedKeyUsage=clientAuth"]),
        ("other-client", ["not issued by a CA this server trusts", "what to do: issue the client certificate from a CA"]),
        (None, ["the client sent no certificate, and this server requires one", "what to do: give the client"]),
    ]

    def test_refused_client_certificates_are_logged_with_reason_and_hint(self):
        async def go(srv):
            for who, _ in self.CASES:
                with self.assertRaises((ssl.SSLError, ConnectionError, websockets.exceptions.WebSocketException,
                                        EOFError, OSError), msg=f"client {who} must be refused"):
                    async with websockets.connect(f"wss://localhost:{srv.port}/", ssl=context(who),
                                                  open_timeout=5) as ws:
                        await asyncio.wait_for(ws.recv(), 5)

        srv = Server(RELOAD, CERTS, "--ca")
        try:
            run(go(srv))
        finally:
            self.assertEqual(srv.stop(), 0)
        lines = [line for line in srv.output.splitlines() if line.startswith("log: ")]
        for who, needles in self.CASES:
            self.assertTrue(any(all(n in line for n in needles) for line in lines),
                            f"no log line for {who} with {needles}; lines: {lines}")


if __name__ == "__main__":
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
