"""Python `picows` peer for the wsserver benchmark (frame-level API).

    python3 picows_echo.py PORT [--broadcast]

Echo mode sends every data frame back with the same type; broadcast mode
relays every data frame to every connected client. Pings are answered by
picows itself (enable_auto_pong, the default).
"""
import asyncio
import signal
import sys

from picows import WSListener, WSMsgType, ws_create_server

CLIENTS = set()
DATA = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)


class Echo(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type in DATA:
            transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


class Relay(WSListener):
    def on_ws_connected(self, transport):
        CLIENTS.add(transport)

    def on_ws_disconnected(self, transport):
        CLIENTS.discard(transport)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type in DATA:
            payload = frame.get_payload_as_bytes()
            for client in CLIENTS:
                client.send(frame.msg_type, payload, frame.fin)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def main():
    port = int(sys.argv[1])
    listener = Relay if "--broadcast" in sys.argv[2:] else Echo
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    server = await ws_create_server(lambda request: listener(), "127.0.0.1", port)
    print(f"listening on ws://127.0.0.1:{port}", flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
