"""build/examples/workflows_server (seed 003's four workflows), driven by
plain HTTP requests and the third-party Python `websockets` client.

The two lines it prints; its page (GET / -> 200 text/html, workflows.js,
workflows.css); the login (nothing before it, "Welcome NAME" with the
people logged in, the others told, taken and bad pseudonyms, twice); echo
(to the sender only); routed (to the client logged in under a name, the
sender told; an unknown name: an error); group (join/leave a topic per
group with member counts, publish reaching every member and only them,
from a non-member too, groups kept apart); streamed (ticks every 200 ms to
subscribers only, numbered in order, stopping at unsubscribe); a closed
client leaves the people list; bad input (binary, not JSON, unknown
commands, missing fields); SIGTERM with clients -> 0.

Plain unittest, helpers from test_echo_example.py; the last line printed
is "N passed, M failed". Run from anywhere: python3 tests/python/test_workflows_example.py
"""

import asyncio
import http.client
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from test_echo_example import Server, client, run  # noqa: E402

NAME = "workflows_server"


def http_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, (r.getheader("Content-Type") or ""), r.read()
    finally:
        conn.close()


async def recv(ws, want=None, skip=("people", "tick"), timeout=5):
    """The next JSON message (of type `want` if given), skipping `skip` types."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {want or 'message'} in {timeout} s")
        msg = json.loads(await asyncio.wait_for(ws.recv(), left))
        if want is not None and msg["type"] == want:
            return msg
        if msg["type"] in skip:
            continue
        if want is not None:
            raise AssertionError(f"expected {want!r}, got {msg!r}")
        return msg


async def quiet(ws, seconds, skip=("people",)):
    """Every message (but `skip` types) that arrives within `seconds`."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = json.loads(await asyncio.wait_for(ws.recv(), left))
        except asyncio.TimeoutError:
            break
        if msg["type"] not in skip:
            got.append(msg)
    return got


async def login(url, name):
    ws = await client(url)
    await ws.send(json.dumps({"type": "login", "name": name}))
    msg = await recv(ws, "welcome")
    assert msg["name"] == name and msg["text"] == f"Welcome {name}", msg
    return ws


class WorkflowsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(NAME)
        cls.page_line = cls.server._read_line(5)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.assertIsNone(self.server.proc.poll(), "workflows_server died in an earlier test")

    def test_lines_and_page(self):
        self.assertEqual(self.server.line, f"listening on ws://127.0.0.1:{self.server.port}")
        self.assertEqual(self.page_line, f"page: http://127.0.0.1:{self.server.port}/")
        status, ctype, body = http_get(self.server.port, "/")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/html"), ctype)
        self.assertIn(b"<title>wsserver workflows</title>", body)
        for path, want in (("/workflows.js", "javascript"), ("/workflows.css", "text/css")):
            status, ctype, _ = http_get(self.server.port, path)
            self.assertEqual(status, 200, path)
            self.assertIn(want, ctype, path)
        self.assertEqual(http_get(self.server.port, "/chat.js")[0], 404)

    def test_nothing_before_login(self):
        async def go():
            async with client(self.server.url) as ws:
                for cmd in ({"type": "echo", "text": "x"}, {"type": "subscribe"},
                            {"type": "join", "group": "g"}, {"type": "routed", "to": "a", "text": "b"}):
                    await ws.send(json.dumps(cmd))
                    msg = await recv(ws)
                    self.assertEqual(msg["type"], "error", cmd)
                    self.assertIn("log in first", msg["text"])

        run(go())

    def test_login_and_people(self):
        async def go():
            a = await login(self.server.url, "Eve")
            try:
                b = await client(self.server.url)
                for bad in ("", " x", "x" * 33, "tab\t", "Eve"):
                    await b.send(json.dumps({"type": "login", "name": bad}))
                    self.assertEqual((await recv(b))["type"], "error", bad)
                await b.send(json.dumps({"type": "login", "name": "Fay \u00e9"}))
                msg = await recv(b, "welcome")
                self.assertEqual(msg["text"], "Welcome Fay \u00e9")
                self.assertIn("Eve", msg["people"])
                self.assertIn("Fay \u00e9", msg["people"])
                await b.send('{"type":"login","name":"Other"}')
                self.assertIn("already", (await recv(b, "error"))["text"])
                msg = await recv(a, "people", skip=())
                self.assertIn("Fay \u00e9", msg["people"])
                await b.close()
                msg = await recv(a, "people", skip=())
                self.assertNotIn("Fay \u00e9", msg["people"])
                self.assertIn("Eve", msg["people"])
            finally:
                await a.close()

        run(go())

    def test_echo_to_the_sender_only(self):
        async def go():
            a = await login(self.server.url, "Echo1")
            b = await login(self.server.url, "Echo2")
            try:
                for text in ("hello world", "", "\u00e9 \U0001F30D \"q\" \\ \n"):
                    await a.send(json.dumps({"type": "echo", "text": text}))
                    self.assertEqual(await recv(a), {"type": "echo", "text": text})
                self.assertEqual(await quiet(b, 0.5), [])
            finally:
                await a.close()
                await b.close()

        run(go())

    def test_routed_to_a_named_client(self):
        async def go():
            a = await login(self.server.url, "Router")
            b = await login(self.server.url, "Target")
            c = await login(self.server.url, "Bystander")
            try:
                await a.send(json.dumps({"type": "routed", "to": "Target", "text": "psst"}))
                self.assertEqual(await recv(b), {"type": "routed", "from": "Router", "text": "psst"})
                self.assertEqual(await recv(a), {"type": "routed-sent", "to": "Target", "text": "psst"})
                await b.send(json.dumps({"type": "routed", "to": "Router", "text": "back"}))
                self.assertEqual(await recv(a), {"type": "routed", "from": "Target", "text": "back"})
                await a.send(json.dumps({"type": "routed", "to": "Nobody", "text": "?"}))
                self.assertEqual(await recv(a), {"type": "error", "text": "nobody is logged in as Nobody"})
                self.assertEqual(await quiet(c, 0.5), [])
            finally:
                for ws in (a, b, c):
                    await ws.close()

        run(go())

    def test_group_join_publish_leave(self):
        async def go():
            a = await login(self.server.url, "G1")
            b = await login(self.server.url, "G2")
            c = await login(self.server.url, "G3")
            try:
                await a.send('{"type":"join","group":"team"}')
                self.assertEqual(await recv(a), {"type": "group-joined", "group": "team", "members": 1})
                await b.send('{"type":"join","group":"team"}')
                self.assertEqual(await recv(b), {"type": "group-joined", "group": "team", "members": 2})
                await c.send('{"type":"join","group":"other"}')
                self.assertEqual((await recv(c))["members"], 1)
                await b.send('{"type":"publish","group":"team","text":"to the team"}')
                want = {"type": "group", "group": "team", "from": "G2", "text": "to the team"}
                self.assertEqual(await recv(a), want)
                self.assertEqual(await recv(b), want)
                self.assertEqual(await recv(b), {"type": "published", "group": "team", "receivers": 2})
                # a non-member may publish; it is not sent the message
                await c.send('{"type":"publish","group":"team","text":"from outside"}')
                self.assertEqual(await recv(c), {"type": "published", "group": "team", "receivers": 2})
                self.assertEqual((await recv(a))["text"], "from outside")
                self.assertEqual((await recv(b))["text"], "from outside")
                await a.send('{"type":"leave","group":"team"}')
                self.assertEqual(await recv(a), {"type": "group-left", "group": "team", "members": 1})
                await b.send('{"type":"publish","group":"team","text":"alone"}')
                self.assertEqual((await recv(b))["text"], "alone")
                self.assertEqual((await recv(b))["receivers"], 1)
                self.assertEqual(await quiet(a, 0.5), [])
                self.assertEqual(await quiet(c, 0.1), [])
                await a.send('{"type":"join","group":""}')
                self.assertEqual((await recv(a))["type"], "error")
            finally:
                for ws in (a, b, c):
                    await ws.close()

        run(go())

    def test_streamed_ticks(self):
        async def go():
            a = await login(self.server.url, "Sub")
            b = await login(self.server.url, "NoSub")
            try:
                await a.send('{"type":"subscribe"}')
                self.assertEqual(await recv(a, skip=("people",)), {"type": "subscribed", "topic": "ticks"})
                first = await recv(a, "tick", skip=("people",), timeout=2)
                t0 = time.monotonic()
                ticks = [first]
                while time.monotonic() - t0 < 2.0:
                    ticks.append(await recv(a, "tick", skip=("people",), timeout=2))
                n = len(ticks) - 1
                self.assertTrue(7 <= n <= 13, f"{n} ticks in 2 s, one per 200 ms expected")
                numbers = [t["n"] for t in ticks]
                self.assertEqual(numbers, list(range(numbers[0], numbers[0] + len(numbers))))
                self.assertGreaterEqual(ticks[-1]["subscribers"], 1)
                self.assertEqual(await quiet(b, 0.1), [], "not subscribed: no ticks")
                await a.send('{"type":"unsubscribe"}')
                msg = await recv(a, "unsubscribed", skip=("people", "tick"))
                self.assertEqual(msg, {"type": "unsubscribed", "topic": "ticks"})
                self.assertEqual(await quiet(a, 0.6), [], "ticks after unsubscribe")
            finally:
                await a.close()
                await b.close()

        run(go())

    def test_bad_input(self):
        async def go():
            a = await login(self.server.url, "Bad")
            try:
                for msg in (b"\x01\x02", "not json", '{"type":"echo"}', '{"type":"routed","to":"x"}',
                            '{"type":"publish","group":"g"}', '{"type":"fly"}', '{"type":"echo","text":"' + "x" * 4001 + '"}'):
                    await a.send(msg)
                    self.assertEqual((await recv(a))["type"], "error", msg)
                await a.send('{"type":"echo","text":"still fine"}')
                self.assertEqual((await recv(a))["text"], "still fine")
            finally:
                await a.close()

        run(go())


class WorkflowsLifecycleTest(unittest.TestCase):
    def test_sigterm_with_subscribers_exits_0(self):
        server = Server(NAME)
        try:
            async def go():
                a = await login(server.url, "Last")
                await a.send('{"type":"subscribe"}')
                await recv(a, "tick", skip=("subscribed", "people"), timeout=2)
                server.proc.send_signal(signal.SIGTERM)
                with self.assertRaises(ConnectionClosed) as cm:
                    while True:
                        await asyncio.wait_for(a.recv(), 5)
                self.assertEqual(cm.exception.rcvd.code, 1001)

            run(go())
            t0 = time.monotonic()
            self.assertEqual(server.terminate(10), 0, server.stderr_text())
            self.assertLess(time.monotonic() - t0, 5)
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
