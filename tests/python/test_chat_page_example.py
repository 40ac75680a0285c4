"""build/examples/chat_server with its page (examples-c/web/chat), driven by
plain HTTP requests and the third-party Python `websockets` client.

The two lines it prints ("listening on ws://..", "page: http://../"); the
page over plain HTTP on the same port (GET / -> 200 text/html, chat.js,
chat.css, favicon.svg with their types, HEAD, ETag/304, /healthz, 404 for
what is not there and for paths out of the directory); the page directory
from the third argument or WSSERVER_WEB, and a missing one (no page line,
chat still works); the JSON commands: join (joined with the people
present, presence join/leave to the others, names with escapes, taken,
empty, too long, twice), say (relayed to every client with the sender's
name, escapes decoded and re-encoded, surrogate pairs; lone surrogates,
\\u0000, 4001 bytes, before join: errors), malformed or unknown commands;
plain text still relayed to named clients; stats once a second to joined
clients only, with connections and messages in/out that grow.

Plain unittest, helpers from test_echo_example.py; the last line printed
is "N passed, M failed". Run from anywhere: python3 tests/python/test_chat_page_example.py
"""

import asyncio
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import websockets  # noqa: E402

from test_echo_example import EXAMPLES, ROOT, Server, client, run  # noqa: E402

NAME = "chat_server"
WELCOME = "Welcome to the wsserver chat!"
WEB = os.path.join(ROOT, "examples-c", "web")


def http_get(port, path, method="GET", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


async def recv_json(ws, want=None, skip=("stats",), timeout=5):
    """The next JSON message (of type `want` if given), skipping `skip` types."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {want or 'JSON'} message in {timeout} s")
        raw = await asyncio.wait_for(ws.recv(), left)
        if not raw.lstrip().startswith("{"):
            if want is None:
                raise AssertionError(f"plain text {raw!r} where JSON was expected")
            continue
        msg = json.loads(raw)
        if want is not None and msg["type"] == want:
            return msg
        if msg["type"] in skip:
            continue
        if want is None:
            return msg
        raise AssertionError(f"expected a {want!r} message, got {msg!r}")


async def joined(url, name):
    """A client that has read the welcome and joined as `name`."""
    ws = await client(url)
    assert await asyncio.wait_for(ws.recv(), 5) == WELCOME
    await ws.send(json.dumps({"type": "join", "name": name}))
    msg = await recv_json(ws, "joined")
    assert msg["name"] == name, msg
    return ws


class ChatPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(NAME)
        cls.page_line = cls.server._read_line(5)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.assertIsNone(self.server.proc.poll(), "chat_server died in an earlier test")

    def test_prints_listening_then_page_line(self):
        self.assertEqual(self.server.line, f"listening on ws://127.0.0.1:{self.server.port}")
        self.assertEqual(self.page_line, f"page: http://127.0.0.1:{self.server.port}/")

    def test_page_is_served(self):
        status, headers, body = http_get(self.server.port, "/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"), headers)
        self.assertIn(b"<title>wsserver chat</title>", body)
        with open(os.path.join(WEB, "chat", "index.html"), "rb") as f:
            self.assertEqual(body, f.read())
        for path, ctype in (("/chat.js", "javascript"), ("/chat.css", "text/css"), ("/favicon.svg", "image/svg+xml"),
                            ("/index.html", "text/html")):
            status, headers, body = http_get(self.server.port, path)
            self.assertEqual(status, 200, path)
            self.assertIn(ctype, headers["content-type"], path)
            self.assertGreater(len(body), 100, path)

    def test_head_etag_health_and_404(self):
        status, headers, body = http_get(self.server.port, "/", "HEAD")
        self.assertEqual((status, body), (200, b""))
        etag = headers.get("etag")
        self.assertTrue(etag, headers)
        status, _, body = http_get(self.server.port, "/", headers={"If-None-Match": etag})
        self.assertEqual((status, body), (304, b""))
        status, _, body = http_get(self.server.port, "/healthz")
        self.assertEqual((status, body.strip()), (200, b"ok"))
        for path in ("/nope.html", "/../chat_server.c", "/%2e%2e/%2e%2e/Makefile", "/..%2fworkflows/index.html"):
            self.assertEqual(http_get(self.server.port, path)[0], 404, path)

    def test_join_presence_and_leave(self):
        async def go():
            a = await client(self.server.url)
            b = await client(self.server.url)
            try:
                for ws in (a, b):
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), WELCOME)
                await a.send('{"type":"join","name":"Ann"}')
                msg = await recv_json(a, "joined")
                self.assertEqual(msg, {"type": "joined", "name": "Ann", "people": ["Ann"]})
                stats = await recv_json(a, "stats")  # a first snapshot right after joining
                self.assertGreaterEqual(stats["connections"], 2)
                # b has not joined, but sees who comes (it reads the chat topic)
                self.assertEqual(await recv_json(b, "presence"),
                                 {"type": "presence", "event": "join", "name": "Ann", "people": ["Ann"]})
                await b.send(' { "type" : "join" , "name" : "Ben" } ')
                msg = await recv_json(b, "joined")
                self.assertEqual(sorted(msg["people"]), ["Ann", "Ben"])
                msg = await recv_json(a, "presence")
                self.assertEqual((msg["event"], msg["name"], sorted(msg["people"])), ("join", "Ben", ["Ann", "Ben"]))
                await b.close()
                msg = await recv_json(a, "presence")
                self.assertEqual(msg, {"type": "presence", "event": "leave", "name": "Ben", "people": ["Ann"]})
            finally:
                await a.close()
                await b.close()

        run(go())

    def test_say_relays_to_everyone_with_the_name(self):
        async def go():
            a = await joined(self.server.url, "Cy")
            b = await joined(self.server.url, "Di")
            plain = await client(self.server.url)
            try:
                self.assertEqual(await asyncio.wait_for(plain.recv(), 5), WELCOME)
                await a.send(json.dumps({"type": "say", "text": "hi \"all\" \\ <b>x</b> \u00e9 \U0001F30D\n"}))
                want = {"type": "chat", "from": "Cy", "text": "hi \"all\" \\ <b>x</b> \u00e9 \U0001F30D\n"}
                for ws in (a, b):
                    self.assertEqual(await recv_json(ws, "chat", skip=("stats", "presence")), want)
                raw = await asyncio.wait_for(plain.recv(), 5)
                while '"presence"' in raw:
                    raw = await asyncio.wait_for(plain.recv(), 5)
                self.assertEqual(json.loads(raw), want)
                # escapes as the page's JSON.stringify may write them, surrogate pairs included
                await b.send('{"type":"say","text":"\\u00e9\\ud83c\\udf0d\\t\\/\\"\\\\"}')
                msg = await recv_json(a, "chat", skip=("stats", "presence"))
                self.assertEqual(msg, {"type": "chat", "from": "Di", "text": "\u00e9\U0001F30D\t/\"\\"})
                # plain text from a plain client still reaches the named ones as it is
                await plain.send("plain hello")
                for ws in (a, b):
                    while True:
                        raw = await asyncio.wait_for(ws.recv(), 5)
                        if not raw.startswith("{"):
                            break
                    self.assertEqual(raw, "plain hello")
            finally:
                for ws in (a, b, plain):
                    await ws.close()

        run(go())

    def test_names_with_escapes(self):
        async def go():
            name = "\u00c5sa \"Q\" \\ \U0001F600"
            a = await joined(self.server.url, name)
            try:
                await a.send('{"type":"say","text":"x"}')
                self.assertEqual((await recv_json(a, "chat", skip=("stats", "presence")))["from"], name)
            finally:
                await a.close()

        run(go())

    def test_bad_commands_get_errors(self):
        async def go():
            async with client(self.server.url) as ws, client(self.server.url) as other:
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), WELCOME)
                self.assertEqual(await asyncio.wait_for(other.recv(), 5), WELCOME)
                await other.send('{"type":"join","name":"Taken"}')
                await recv_json(other, "joined")
                bad = [
                    '{"type":"say","text":"before joining"}',
                    '{"type":"join"',
                    '{"type":"join","name":"a"} trailing',
                    '{"type":"join","name":1}',
                    '{"type":"dance"}',
                    '{"name":"no type"}',
                    '{"type":"join","name":""}',
                    '{"type":"join","name":" padded"}',
                    '{"type":"join","name":"' + "n" * 33 + '"}',
                    '{"type":"join","name":"ctl\\u0001"}',
                    '{"type":"join","name":"nul\\u0000"}',
                    '{"type":"join","name":"lone \\ud83c"}',
                    '{"type":"join","name":"low \\udf0d"}',
                    '{"type":"join","name":"bad \\x"}',
                    '{"type":"join","name":"Taken"}',
                    '{' + ",".join(f'"k{i}":"v"' for i in range(9)) + '}',
                ]
                for text in bad:
                    await ws.send(text)
                    msg = await recv_json(ws, skip=("stats", "presence"))
                    self.assertEqual(msg["type"], "error", text)
                    self.assertTrue(msg["text"], text)
                # still usable: join, then too long a message, then join twice
                await ws.send('{"type":"join","name":"Fine"}')
                await recv_json(ws, "joined", skip=("stats", "presence"))
                await ws.send(json.dumps({"type": "say", "text": "x" * 4001}))
                self.assertEqual((await recv_json(ws, skip=("stats", "presence")))["type"], "error")
                await ws.send('{"type":"join","name":"Again"}')
                self.assertIn("already", (await recv_json(ws, "error", skip=("stats", "presence")))["text"])
                await ws.send(json.dumps({"type": "say", "text": "x" * 4000}))
                self.assertEqual(len((await recv_json(ws, "chat", skip=("stats", "presence")))["text"]), 4000)

        run(go())

    def test_stats_once_a_second_to_joined_clients_only(self):
        async def go():
            a = await joined(self.server.url, "Stat")
            plain = await client(self.server.url)
            try:
                self.assertEqual(await asyncio.wait_for(plain.recv(), 5), WELCOME)
                first = await recv_json(a, "stats", skip=())  # sent at join
                for key in ("connections", "messages_in", "messages_out", "bytes_in", "bytes_out",
                            "handshakes_accepted", "http_requests", "topics", "subscriptions", "people"):
                    self.assertIsInstance(first[key], int, key)
                t0 = time.monotonic()
                await a.send('{"type":"say","text":"count me"}')
                ticks = []
                while len(ticks) < 2:
                    ticks.append(await recv_json(a, "stats", skip=("chat", "presence"), timeout=3))
                self.assertLess(time.monotonic() - t0, 3.5)
                self.assertGreaterEqual(ticks[-1]["connections"], 2)
                self.assertGreater(ticks[-1]["messages_in"], first["messages_in"])
                self.assertGreater(ticks[-1]["messages_out"], first["messages_out"])
                self.assertGreaterEqual(ticks[-1]["people"], 1)
                # the plain client got the chat line, and no statistics
                got = []
                try:
                    while True:
                        got.append(await asyncio.wait_for(plain.recv(), 1.5))
                except asyncio.TimeoutError:
                    pass
                self.assertFalse([m for m in got if '"stats"' in m], got)
            finally:
                await a.close()
                await plain.close()

        run(go())


class ChatPageDirTest(unittest.TestCase):
    def test_third_argument(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "index.html"), "w") as f:
                f.write("<title>mine</title>")
            p = subprocess.Popen([os.path.join(EXAMPLES, NAME), "127.0.0.1", "0", d], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            try:
                line = p.stdout.readline().decode().strip()
                port = int(line.rsplit(":", 1)[1])
                self.assertEqual(p.stdout.readline().decode().strip(), f"page: http://127.0.0.1:{port}/")
                self.assertEqual(http_get(port, "/")[2], b"<title>mine</title>")
            finally:
                p.terminate()
                self.assertEqual(p.wait(10), 0)
                p.stdout.close()
                p.stderr.close()

    def test_wsserver_web_and_a_missing_directory(self):
        env = dict(os.environ, WSSERVER_WEB=WEB)
        p = subprocess.Popen([os.path.join(EXAMPLES, NAME), "127.0.0.1", "0"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        try:
            port = int(p.stdout.readline().decode().strip().rsplit(":", 1)[1])
            self.assertEqual(p.stdout.readline().decode().strip(), f"page: http://127.0.0.1:{port}/")
            self.assertEqual(http_get(port, "/")[0], 200)
        finally:
            p.terminate()
            self.assertEqual(p.wait(10), 0)
            p.stdout.close()
            p.stderr.close()
        env = dict(os.environ, WSSERVER_WEB="/nonexistent")
        p = subprocess.Popen([os.path.join(EXAMPLES, NAME), "127.0.0.1", "0"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        try:
            line = p.stdout.readline().decode().strip()
            port = int(line.rsplit(":", 1)[1])
            self.assertEqual(http_get(port, "/")[0], 404)

            async def go():
                async with client(f"ws://127.0.0.1:{port}") as ws:
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), WELCOME)
                    await ws.send("still chatting")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "still chatting")

            run(go())
        finally:
            p.terminate()
            self.assertEqual(p.wait(10), 0)
            out, err = p.communicate()
            self.assertEqual(out, b"", "no page line without a page")
            self.assertIn(b"no page directory", err)

    def test_too_many_arguments(self):
        p = subprocess.run([os.path.join(EXAMPLES, NAME), "127.0.0.1", "0", WEB, "extra"], capture_output=True,
                           timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"usage", p.stderr)


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
