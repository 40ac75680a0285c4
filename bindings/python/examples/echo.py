"""echo.py [host] [port] [--asyncio]: sends every message back, text as text
and binary as binary. Prints "listening on ws://HOST:PORT" once ready and
exits 0 on SIGINT/SIGTERM.

Handlers (default): on_message runs on the server's I/O thread.
--asyncio: the event queue is read on an asyncio loop."""
import asyncio
import signal
import sys

import wsserver
from _common import args, block_signals, print_listening, wait_for_signal


def with_handlers(host: str, port: int) -> None:
    block_signals()
    with wsserver.Server() as srv:

        @srv.on_message
        def echo(conn: int, data: "str | bytes") -> None:
            try:
                srv.send(conn, data)  # copies data; BACKPRESSURE is fine here (the client sends as fast as it reads)
            except wsserver.ClosedError:
                pass  # the client left meanwhile

        srv.listen(host, port)
        print_listening(host, srv.port)
        wait_for_signal()
    # leaving `with` closed the server (1001 to every client, 1 s grace)


async def with_asyncio(host: str, port: int) -> None:
    async with wsserver.Server(event_queue=True) as srv:
        srv.listen(host, port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(srv.aclose()))
        print_listening(host, srv.port)
        async for event in srv.events():  # ends once the server is closed and drained
            if event.type is wsserver.EventType.OPEN:
                event.accept()  # or event.refuse(403) after looking at event.request
            elif event.type is wsserver.EventType.MESSAGE:
                try:
                    # Waits for the drain on backpressure, which pauses every
                    # connection meanwhile: fine for an echo.
                    await srv.send_async(event.conn, event.data)
                except wsserver.ClosedError:
                    pass


def main() -> int:
    host, port, use_asyncio = args("wsserver echo server")
    try:
        if use_asyncio:
            asyncio.run(with_asyncio(host, port))
        else:
            with_handlers(host, port)
    except wsserver.WsError as e:
        print(f"echo: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
