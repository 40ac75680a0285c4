"""Event mode (WS_OPT_EVENT_QUEUE=1): events copied out of ws_server_poll,
and the asyncio pump that drains them when the event fd is readable."""
from __future__ import annotations

import asyncio
import ctypes
import enum
from collections import deque
from typing import TYPE_CHECKING, AsyncIterator, Deque, Optional, Union

from . import _lib
from ._errors import WsError, error_for
from .request import HttpRequest, Request, copy_http_request, copy_request

if TYPE_CHECKING:
    from .server import Headers, Server


class Kind(enum.IntEnum):
    """A message kind (WS_TEXT / WS_BINARY)."""

    TEXT = _lib.WS_TEXT
    BINARY = _lib.WS_BINARY


class EventType(enum.IntEnum):
    """WS_EVENT_*: what a polled event reports."""

    OPEN = 1  # request set; answer with accept() / refuse() unless auto_accept
    MESSAGE = 2  # data: str (text) or bytes (binary)
    CLOSE = 3  # code: close code, data: reason; exactly once per opened conn, last
    ERROR = 4  # code: ws_result, data: message; a CLOSE follows
    DRAIN = 5  # the send queue fell back under send_queue_limit
    LOG = 6  # conn 0, code: LogLevel, data: message
    HTTP = 7  # an HttpEvent: a plain HTTP request (http_handler=True); answer with event.respond()


class Event:
    """One event, a plain Python copy: the C ws_event is freed at once."""

    __slots__ = ("type", "conn", "data", "code", "request", "_server")

    def __init__(
        self,
        server: "Server",
        type: Union[EventType, int],
        conn: int,
        data: Union[str, bytes],
        code: int,
        request: Optional[Request],
    ) -> None:
        self.type = type
        self.conn = conn
        self.data = data
        self.code = code
        self.request = request
        self._server = server

    @classmethod
    def copy(cls, server: "Server", ev: _lib.ws_event) -> "Event":
        """Copies a live ws_event (the caller frees it afterwards)."""
        raw = ctypes.string_at(ev.data, ev.len) if ev.len else b""
        try:
            kind: Union[EventType, int] = EventType(ev.type)
        except ValueError:
            kind = ev.type  # a type appended by a newer library
        data: Union[str, bytes] = raw
        if kind != EventType.MESSAGE or ev.kind == _lib.WS_TEXT:
            data = raw.decode("utf-8", "replace")
        if kind == EventType.HTTP and ev.request:
            return HttpEvent(server, kind, ev.conn, data, ev.code, copy_http_request(ev.conn, ev.request))
        request = copy_request(ev.request) if ev.request else None
        return cls(server, kind, ev.conn, data, ev.code, request)

    @property
    def kind(self) -> Optional[Kind]:
        """TEXT or BINARY for a MESSAGE, else None."""
        if self.type != EventType.MESSAGE:
            return None
        return Kind.TEXT if isinstance(self.data, str) else Kind.BINARY

    @property
    def text(self) -> str:
        """data as str: the text message, close reason, or error/log message
        (a binary message is decoded as UTF-8 with replacement)."""
        return self.data if isinstance(self.data, str) else self.data.decode("utf-8", "replace")

    @property
    def error(self) -> Optional[WsError]:
        """For an ERROR event, the WsError subclass it stands for."""
        if self.type != EventType.ERROR:
            return None
        return error_for(self.code, self.text)

    def accept(self, subprotocol: Optional[str] = None, headers: Optional["Headers"] = None) -> None:
        """Accepts an OPEN (ws_conn_accept). subprotocol: None for the
        server's own choice, else one the client offered; headers (e.g.
        {"Set-Cookie": ...}) go on the 101 (ws_conn_add_header)."""
        self._server.accept(self.conn, subprotocol, headers)

    def refuse(
        self, status: int = 403, body: Optional[Union[str, bytes]] = None, headers: Optional["Headers"] = None
    ) -> None:
        """Refuses an OPEN with an HTTP status 400..599 (ws_conn_refuse), with
        a body (ws_conn_refuse_with_body) and extra headers when given."""
        self._server.refuse(self.conn, status, body, headers)

    def __repr__(self) -> str:
        name = self.type.name if isinstance(self.type, EventType) else self.type
        data = self.data if len(self.data) <= 40 else self.data[:40]
        return f"<Event {name} conn={self.conn} code={self.code} data={data!r}>"


class HttpEvent(Event):
    """An HTTP event: `request` is the HttpRequest (method, path, query,
    headers, body), `conn` its id. Answer it with respond(), now or later,
    from any thread, within handshake_timeout_ms (else the client gets 503)."""

    __slots__ = ()
    request: HttpRequest

    def respond(
        self,
        status: int,
        body: Union[str, bytes] = b"",
        content_type: Optional[str] = None,
        headers: Optional["Headers"] = None,
    ) -> None:
        """server.respond(self.conn, ...): see Server.respond."""
        self._server.respond(self.conn, status, body, content_type, headers)


class Pump:
    """Drains ws_server_poll(srv, 0) on the event loop whenever the event fd
    is readable, into a bounded buffer for events(). When the buffer is full
    it stops reading the fd (so the C queue's limits push back on clients),
    except while a send_async waits for a drain that may be behind."""

    LIMIT = 1024

    def __init__(self, server: "Server", loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.buffer: Deque[Event] = deque()
        self.ended = False
        self.reading = False
        self.wakeup: Optional["asyncio.Future[None]"] = None
        self.fd = server.event_fd()
        self._read(True)

    def _read(self, on: bool) -> None:
        if on and not self.reading and not self.ended:
            self.loop.add_reader(self.fd, self.pump)
        elif not on and self.reading and not self.loop.is_closed():
            self.loop.remove_reader(self.fd)
        self.reading = on and not self.ended

    def pump(self) -> None:
        """The reader callback: take what waits, then wake the consumer."""
        try:
            while len(self.buffer) < self.LIMIT or self.server.waiting_for_drain():
                ev = self.server.poll(0)
                if ev is None:
                    break
                self.buffer.append(ev)
        except WsError:  # WS_ERR_CLOSED: every event has been taken
            self.stop()
        if len(self.buffer) >= self.LIMIT:
            self._read(False)
        self._wake()

    def _wake(self) -> None:
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    def stop(self) -> None:
        """No more events: the server closed, or is about to be freed."""
        if not self.ended:
            self._read(False)
            self.ended = True
            self._wake()

    async def next(self) -> Optional[Event]:
        """The next event, or None once the server is closed and drained."""
        while not self.buffer:
            if self.ended:
                return None
            self.wakeup = self.loop.create_future()
            await self.wakeup
        ev = self.buffer.popleft()
        if len(self.buffer) < self.LIMIT // 2:
            self._read(True)
        return ev


async def iterate(pump: Pump) -> AsyncIterator[Event]:
    """`async for event in server.events()`."""
    while True:
        ev = await pump.next()
        if ev is None:
            return
        yield ev
