"""Python `websockets` (asyncio API) peer for the wsserver benchmark.

    python3 websockets_echo.py PORT [--broadcast] [--deflate] [--tls CERT KEY]

Default server options but compression: permessage-deflate (websockets'
default) only with --deflate, else compression=None, so that the deflate-off
rows, whose client offers it, are declined (the other rows offer nothing).
Echo mode sends every message back; broadcast mode relays every message to
every connected client with websockets' broadcast(). --tls CERT KEY:
wss://, an ssl.SSLContext(PROTOCOL_TLS_SERVER) on the PEM files (Python's
TLS defaults).
"""
import asyncio
import signal
import ssl
import sys

from websockets.asyncio.server import broadcast, serve

CLIENTS = set()


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


async def relay(ws):
    CLIENTS.add(ws)
    try:
        async for msg in ws:
            broadcast(CLIENTS, msg)
    finally:
        CLIENTS.discard(ws)


async def main():
    port = int(sys.argv[1])
    handler = relay if "--broadcast" in sys.argv[2:] else echo
    compression = "deflate" if "--deflate" in sys.argv[2:] else None
    tls = None
    if "--tls" in sys.argv[2:]:
        i = sys.argv.index("--tls")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(handler, "127.0.0.1", port, compression=compression, ssl=tls):
        print(f"listening on {'wss' if tls else 'ws'}://127.0.0.1:{port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
