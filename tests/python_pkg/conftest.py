"""Shared helpers for the wsserver package tests: servers on 127.0.0.1 with
port 0, websockets clients, bounded waits, and test certificates."""
import asyncio
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Coroutine, Iterator, List, Optional

import pytest
from websockets.asyncio.client import connect

import wsserver

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0  # seconds any single condition may take before a test fails


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    """Runs a client coroutine with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def url(srv: wsserver.Server, path: str = "/", scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{srv.port}{path}"


def client(srv: wsserver.Server, path: str = "/", **kw: Any) -> Any:
    kw.setdefault("open_timeout", WAIT)
    kw.setdefault("close_timeout", WAIT)
    kw.setdefault("max_size", None)
    return connect(url(srv, path, "wss" if "ssl" in kw else "ws"), **kw)


async def recv(ws: Any) -> Any:
    return await asyncio.wait_for(ws.recv(), WAIT)


async def stats_when(srv: wsserver.Server, pred: Callable[[Any], bool]) -> Any:
    """The server's stats once `pred` holds: a count moves right after what
    it counts, so a client may hold a reply a moment before its count."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not pred(st := srv.stats()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; stats: {st!r}")
        await asyncio.sleep(0.002)
    return st


class Recorder:
    """Collects what handlers see on the I/O thread; tests wait on it."""

    def __init__(self) -> None:
        self.items: List[Any] = []
        self.cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, pred: Callable[[List[Any]], bool], timeout: float = WAIT) -> List[Any]:
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.items), timeout):
                raise AssertionError(f"timed out; recorded: {self.items!r}")
            return list(self.items)

    async def await_for(self, pred: Callable[[List[Any]], bool], timeout: float = WAIT) -> List[Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self.wait_for, pred, timeout)


@pytest.fixture
def make_server() -> Iterator[Callable[..., wsserver.Server]]:
    """make_server(**kw) -> a listening server on 127.0.0.1:0, closed and
    freed after the test."""
    made: List[wsserver.Server] = []

    def make(listen: bool = True, **kw: Any) -> wsserver.Server:
        srv = wsserver.Server(**kw)
        made.append(srv)
        if listen:
            srv.listen("127.0.0.1", 0)
        return srv

    yield make
    for srv in made:
        srv.__exit__(None, None, None)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    subprocess.run(["bash", str(ROOT / "scripts" / "make-certs.sh"), str(out)], check=True,
                   capture_output=True, timeout=120)
    return out


def client_context(certs: Path, cert: Optional[str] = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(certs / f"{cert}.pem"), str(certs / f"{cert}.key"))
    return ctx
