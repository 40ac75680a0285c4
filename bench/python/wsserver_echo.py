"""wsserver's Python package (ctypes, asyncio on the event fd) as a
benchmark row:

    python3 wsserver_echo.py PORT [--broadcast] [--deflate]

Runs from the source tree: the package from bindings/python, the library
from target/release (WSSERVER_LIBRARY), so no install step is needed.
Echo mode sends every message back; broadcast mode publishes every message
to the other clients through a topic, as the C row does. --deflate:
permessage-deflate on (deflate=1, the other deflate options at their defaults).
"""
import asyncio
import os
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
os.environ.setdefault("WSSERVER_LIBRARY", os.path.join(ROOT, "target", "release", "libwsserver.so"))

import wsserver  # noqa: E402


async def main() -> None:
    port = int(sys.argv[1])
    broadcast = "--broadcast" in sys.argv[2:]
    deflate = int("--deflate" in sys.argv[2:])
    async with wsserver.Server(event_queue=True, auto_accept=True, max_connections=1_000_000, deflate=deflate) as srv:
        srv.listen("127.0.0.1", port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(srv.aclose()))
        print(f"listening on ws://127.0.0.1:{srv.port}", flush=True)
        async for event in srv.events():
            if event.type is wsserver.EventType.OPEN and broadcast:
                try:
                    srv.subscribe(event.conn, "all")
                except wsserver.WsError:
                    pass  # closed before its open event was taken (the start-up probe)
            elif event.type is wsserver.EventType.MESSAGE:
                try:
                    if broadcast:
                        srv.publish("all", event.data, except_=event.conn)
                    else:
                        srv.send(event.conn, event.data)
                except wsserver.WsError:
                    pass  # closed meanwhile, or over its limits: the generator notices


if __name__ == "__main__":
    asyncio.run(main())
