"""chat.py [host] [port] [--asyncio]: a chat room. Each new client gets a
welcome message; every text message is relayed to all clients (the sender
too); clients are pinged every 5 s and dropped after 15 s of silence.
Prints "listening on ws://HOST:PORT" once ready and exits 0 on SIGINT/SIGTERM.

Handlers (default): they run on the server's I/O thread.
--asyncio: the event queue is read on an asyncio loop."""
import asyncio
import signal
import sys

import wsserver
from _common import args, block_signals, print_listening, wait_for_signal

WELCOME = "Welcome to the wsserver chat!"


def chat_server(event_queue: bool) -> wsserver.Server:
    """Pings every 5 s, drops after 15 s of silence; room for many clients."""
    return wsserver.Server(event_queue=event_queue, ping_interval_ms=5000, idle_timeout_ms=15000,
                           max_connections=100000)


def with_handlers(host: str, port: int) -> None:
    block_signals()
    with chat_server(event_queue=False) as srv:

        @srv.on_open
        def joined(conn: int, request: wsserver.Request) -> None:
            srv.send(conn, WELCOME)  # goes out right after the handshake
            print(f"#{conn} joined from {request.peer} ({request.path})", file=sys.stderr)

        @srv.on_message
        def relay(conn: int, data: "str | bytes") -> None:
            if isinstance(data, str):
                srv.broadcast(data)

        @srv.on_close
        def left(conn: int, code: int, reason: str) -> None:
            print(f"#{conn} left ({code} {reason})", file=sys.stderr)

        srv.listen(host, port)
        print_listening(host, srv.port)
        wait_for_signal()


async def with_asyncio(host: str, port: int) -> None:
    async with chat_server(event_queue=True) as srv:
        srv.listen(host, port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(srv.aclose()))
        print_listening(host, srv.port)
        async for event in srv.events():
            if event.type is wsserver.EventType.OPEN and event.request is not None:
                event.accept()
                srv.send(event.conn, WELCOME)
                print(f"#{event.conn} joined from {event.request.peer} ({event.request.path})", file=sys.stderr)
            elif event.type is wsserver.EventType.MESSAGE and event.kind is wsserver.Kind.TEXT:
                srv.broadcast(event.data)  # slow clients past their hard limit are skipped
            elif event.type is wsserver.EventType.CLOSE:
                print(f"#{event.conn} left ({event.code} {event.text})", file=sys.stderr)


def main() -> int:
    host, port, use_asyncio = args("wsserver chat server")
    try:
        if use_asyncio:
            asyncio.run(with_asyncio(host, port))
        else:
            with_handlers(host, port)
    except wsserver.WsError as e:
        print(f"chat: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
