"""bindings/python/examples: each prints one "listening on" line, serves,
and exits 0 on SIGTERM/SIGINT, in both styles."""
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, WAIT, recv, run
from websockets.asyncio.client import connect

EXAMPLES = ROOT / "bindings" / "python" / "examples"


class Example:
    def __init__(self, name, *args):
        self.proc = subprocess.Popen([sys.executable, str(EXAMPLES / name), "127.0.0.1", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # bounded: the process exits on any failure to listen
        m = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"no listening line: {line!r} {self.proc.communicate(timeout=WAIT)}")
        self.url = f"ws://127.0.0.1:{m.group(1)}"

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert out == "", "only one line on stdout"
        return self.proc.returncode, err


MODES = [[], ["--asyncio"]]


@pytest.mark.parametrize("mode", MODES, ids=["handlers", "asyncio"])
def test_echo_example(mode):
    ex = Example("echo.py", *mode)
    try:
        async def go():
            async with connect(ex.url, open_timeout=WAIT) as ws:
                await ws.send("ping")
                assert await recv(ws) == "ping"
                await ws.send(b"\x00" * 70000)
                assert await recv(ws) == b"\x00" * 70000

        run(go())
    finally:
        code, err = ex.stop()
    assert code == 0, err


@pytest.mark.parametrize("mode", MODES, ids=["handlers", "asyncio"])
def test_chat_example(mode):
    ex = Example("chat.py", *mode)
    try:
        async def go():
            async with connect(ex.url + "/room", open_timeout=WAIT) as a, connect(ex.url, open_timeout=WAIT) as b:
                for ws in (a, b):
                    assert await recv(ws) == "Welcome to the wsserver chat!"
                await b.send("hello from b")
                assert [await recv(a), await recv(b)] == ["hello from b"] * 2

        run(go())
    finally:
        code, err = ex.stop(signal.SIGINT)
    assert code == 0, err
    assert re.search(r"#1 joined from 127\.0\.0\.1:\d+ \(/room\)", err), err
    assert "#2 left (1000 )" in err or "#1 left (1000 )" in err, err


def test_examples_refuse_a_bad_port():
    r = subprocess.run([sys.executable, str(EXAMPLES / "echo.py"), "127.0.0.1", "99999"], capture_output=True,
                       text=True, timeout=WAIT)
    assert r.returncode == 2 and "port" in r.stderr and r.stdout == ""


def test_examples_report_a_busy_port():
    ex = Example("echo.py")
    try:
        port = ex.url.rsplit(":", 1)[1]
        r = subprocess.run([sys.executable, str(EXAMPLES / "echo.py"), "127.0.0.1", port, "--asyncio"],
                           capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 1 and "WS_ERR_ADDR_IN_USE" in r.stderr and r.stdout == ""
    finally:
        assert ex.stop()[0] == 0
