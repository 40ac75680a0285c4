"""What both examples share: "[host] [port] [--asyncio]" and the one
"listening on ws://HOST:PORT" line, printed (flushed) once ready."""
import argparse
import signal
from typing import Tuple


def args(description: str) -> Tuple[str, int, bool]:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("host", nargs="?", default="127.0.0.1")
    p.add_argument("port", nargs="?", type=int, default=8080)
    p.add_argument("--asyncio", action="store_true", help="run on an asyncio loop (event queue) instead of handlers")
    a = p.parse_args()
    if not 0 <= a.port <= 65535:
        p.error(f"port 0-65535, not {a.port}")
    return a.host, a.port, a.asyncio


def print_listening(host: str, port: int) -> None:
    v6 = ":" in host and not host.startswith("[")
    print(f"listening on ws://{'[' if v6 else ''}{host}{']' if v6 else ''}:{port}", flush=True)


def block_signals() -> None:
    """Before the server exists, so its I/O threads inherit the mask and
    SIGINT/SIGTERM reach only wait_for_signal()."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def wait_for_signal() -> None:
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
