"""The Server: one libwsserver server, driven either by Python handlers that
run on the server's I/O thread (ctypes callbacks), or by its event queue,
which asyncio reads through a file descriptor (event_queue=True)."""
from __future__ import annotations

import asyncio
import atexit
import ctypes
import enum
import inspect
import itertools
import logging
import os
import threading
import traceback
import weakref
from dataclasses import dataclass, fields
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar, Union

from . import _lib
from ._errors import ClosedError, WsError, check, error_for
from .events import Event, EventType, Pump, iterate
from .options import OPTIONS, get_option, option_ids
from .request import HttpRequest, Request, copy_http_request, copy_request
from .tls import TlsConfig

logger = logging.getLogger("wsserver")

Data = Union[str, bytes, bytearray, memoryview]
Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]]]
"""Extra response headers: a mapping, or (name, value) pairs (a name may repeat)."""
F = TypeVar("F", bound=Callable[..., Any])
HttpAnswer = Union[None, int, Tuple[int, Optional[str], Union[str, bytes]]]
"""What an on_http handler returns: a status (100..599) answers now with no
body; (status, content_type, body) answers now with that body (str: UTF-8;
content_type None: none); None means the handler answered with
server.respond(request.id, ...) — or will, later, from any thread."""


class SendStatus(enum.IntEnum):
    """A send that was accepted: QUEUED, or BACKPRESSURE (queued, but the
    connection's queue is now at or over send_queue_limit: wait for drain)."""

    QUEUED = _lib.WS_OK
    BACKPRESSURE = _lib.WS_BACKPRESSURE


class LogLevel(enum.IntEnum):
    """WS_LOG_*: lower is more severe."""

    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4


class OpenAnswer(enum.IntEnum):
    """What on_open may return besides None (accept) or an HTTP status:
    DEFER answers later, from any thread, with server.accept(conn) or
    server.refuse(conn, status) (WS_OPEN_DEFER), within handshake_timeout_ms
    (else the client gets 503)."""

    DEFER = _lib.WS_OPEN_DEFER


DEFER = OpenAnswer.DEFER


@dataclass(frozen=True)
class Stats:
    """A snapshot of the server's statistics (ws_stats). Counters count
    since listen; open_connections, queued_bytes, topics, subscriptions and
    backplane_connected are values now."""

    open_connections: int
    handshakes_accepted: int
    handshakes_refused: int  # bad request, by the host, limits, origin, path
    messages_in: int
    messages_out: int  # a broadcast or publish counts once per recipient
    bytes_in: int  # payload bytes received
    bytes_out: int  # bytes written to sockets (frames and handshakes)
    queued_bytes: int
    topics: int  # topics with at least one subscriber
    subscriptions: int
    http_requests: int
    backplane_connected: int  # 1 while the link to the backplane's broker is up
    backplane_published: int  # publishes sent to the broker (another server wanted the topic)
    backplane_received: int  # messages from other servers, once each
    backplane_local_only: int  # publishes other servers wanted but did not get (broker unreachable)
    backplane_reconnects: int
    memory_held: int  # bytes counted against memory_budget (0 without one)


_STATS_FIELDS = tuple(f.name for f in fields(Stats))
assert _STATS_FIELDS == tuple(f[0] for f in _lib.ws_stats._fields_)


def _pairs(headers: Optional[Headers]) -> List[Tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def _body(body: Union[str, bytes, bytearray, memoryview]) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _strings(items: Iterable[str]) -> Tuple["ctypes.Array[ctypes.c_char_p]", int]:
    names = [s.encode() for s in items]
    return (ctypes.c_char_p * len(names))(*names), len(names)


_PY_LEVEL = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}


def _payload(data: Data) -> Tuple[bytes, int]:
    """str -> UTF-8 text; bytes-like -> binary. Lone surrogates are passed
    through so that the library refuses them (InvalidUtf8Error)."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass"), _lib.WS_TEXT
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), _lib.WS_BINARY
    raise TypeError(f"send takes str (text) or bytes (binary), not {type(data).__name__}")


# --- C callbacks -------------------------------------------------------------
# One set of CFUNCTYPE objects for the whole process, never freed, so no
# callback can ever reach a collected trampoline. They find their Server by
# the user_data number in a registry of weak references; a server that is
# gone (or being freed) is simply not found.

_servers: "Dict[int, weakref.ref[Server]]" = {}
_ids = itertools.count(1)


def _trampoline(default: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(user_data: Optional[int], *args: Any) -> Any:
            try:  # nothing may escape into C
                ref = _servers.get(user_data or 0)
                srv = ref() if ref is not None else None
                return default if srv is None else method(srv, *args)
            except BaseException:
                try:
                    logger.exception("wsserver: internal error in a callback")
                except BaseException:
                    pass
                return default

        return call

    return wrap


@_trampoline(503)
def _on_open(srv: "Server", conn: int, req: int) -> int:
    return srv._dispatch_open(conn, req)


@_trampoline(None)
def _on_message(srv: "Server", conn: int, data: int, length: int, kind: int) -> None:
    raw = ctypes.string_at(data, length) if length else b""
    srv._dispatch("on_message", conn, raw.decode("utf-8") if kind == _lib.WS_TEXT else raw)


@_trampoline(None)
def _on_close(srv: "Server", conn: int, code: int, reason: int, length: int) -> None:
    srv._release(conn)
    text = ctypes.string_at(reason, length).decode("utf-8", "replace") if length else ""
    srv._dispatch("on_close", conn, code, text)


@_trampoline(None)
def _on_error(srv: "Server", conn: int, code: int, message: Optional[bytes]) -> None:
    srv._dispatch("on_error", conn, error_for(code, (message or b"").decode("utf-8", "replace")))


@_trampoline(None)
def _on_drain(srv: "Server", conn: int) -> None:
    srv._release(conn)
    srv._dispatch("on_drain", conn)


@_trampoline(500)
def _on_http(srv: "Server", id: int, req: int) -> int:
    return srv._dispatch_http(id, req)


@_trampoline(None)
def _on_log(srv: "Server", level: int, message: Optional[bytes]) -> None:
    srv._log_line(level, (message or b"").decode("utf-8", "replace"))


_CALLBACKS = _lib.ws_callbacks(
    _lib.ON_OPEN(_on_open),
    _lib.ON_MESSAGE(_on_message),
    _lib.ON_CLOSE(_on_close),
    _lib.ON_ERROR(_on_error),
    _lib.ON_DRAIN(_on_drain),
    _lib.ON_LOG(_on_log),
    _lib.ON_HTTP(_on_http),
)


@atexit.register
def _close_all() -> None:
    """Servers still open at exit are closed while the interpreter can still
    run their callbacks (a callback into a finalizing Python would crash)."""
    for ref in list(_servers.values()):
        srv = ref()
        if srv is not None:
            try:
                srv.close()
            except WsError:
                pass


class Server:
    """A WebSocket server (libwsserver).

    Options are keyword arguments named after WS_OPT_* without the prefix,
    lower case (max_message_size=..., send_queue_limit=...); their defaults,
    ranges and reasons come from the library (wsserver.OPTIONS). Handlers
    (on_open, on_message, on_close, on_error, on_drain, on_log, on_http)
    may be given here or set with the decorators of the same name.

    Plain HTTP on the same port: static_dir serves files, health_path
    answers 200 "ok"; other requests go to on_http (which turns
    http_handler on) or, with event_queue=True and http_handler=True, come
    as HttpEvent events. Without any of these a plain request gets 404.

    Handler style: handlers run on the server's I/O thread. ctypes takes the
    GIL for each call, so a slow handler stalls every connection of that
    thread and competes with your other Python threads: keep them short and
    hand long work to a queue or an executor. A handler that raises is
    logged (logger "wsserver", and on_log) and the server keeps serving.

    Event style (event_queue=True): no handler runs; read events with
    `async for event in server.events()` (asyncio) or server.poll().

    More than one server: backplane="redis://HOST:PORT" (or rediss://, a
    password, ?prefix=P, &ca_file=PATH: ws_server_set_backplane) makes
    publish() reach the topic's subscribers on every server on that broker
    and prefix; listen() raises IoError when the broker cannot be reached.
    """

    def __init__(
        self,
        *,
        on_open: Optional[Callable[[int, Request], Optional[int]]] = None,
        on_message: Optional[Callable[[int, Union[str, bytes]], Any]] = None,
        on_close: Optional[Callable[[int, int, str], Any]] = None,
        on_error: Optional[Callable[[int, WsError], Any]] = None,
        on_drain: Optional[Callable[[int], Any]] = None,
        on_log: Optional[Callable[[int, str], Any]] = None,
        on_http: Optional[Callable[[HttpRequest], HttpAnswer]] = None,
        static_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        health_path: Optional[str] = None,
        subprotocols: Iterable[str] = (),
        tls: Optional[TlsConfig] = None,
        allowed_origins: Iterable[str] = (),
        paths: Iterable[str] = (),
        backplane: Optional[str] = None,
        **options: int,
    ) -> None:
        self._ptr: Optional[int] = None
        ids = option_ids(options)  # unknown names fail before anything is created
        self._handlers: Dict[str, Optional[Callable[..., Any]]] = {
            "on_open": on_open,
            "on_message": on_message,
            "on_close": on_close,
            "on_error": on_error,
            "on_drain": on_drain,
            "on_log": on_log,
            "on_http": on_http,
        }
        self._http_option_given = "http_handler" in options
        self._event_mode = bool(options.get("event_queue"))
        for name, fn in self._handlers.items():
            self._check_handler(name, fn)
        self._id = next(_ids)
        self._poll_lock = threading.Lock()
        self._waiters: Dict[int, List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]]] = {}
        self._waiters_lock = threading.Lock()
        self._pump: Optional[Pump] = None
        self._soft_limit = 0
        self._closed = False
        ptr = _lib.ws_server_new_sized(ctypes.byref(_CALLBACKS), ctypes.sizeof(_CALLBACKS), self._id)
        if not ptr:
            raise error_for(-17)
        self._ptr = ptr
        _servers[self._id] = weakref.ref(self)
        try:
            for option, value in ids.items():
                check(_lib.ws_server_set_option(ptr, option, value))
            for setter, items in (
                (_lib.ws_server_set_subprotocols, subprotocols),
                (_lib.ws_server_set_allowed_origins, allowed_origins),
                (_lib.ws_server_set_paths, paths),
            ):
                array, count = _strings(items)
                if count:
                    check(setter(ptr, array, count))
            if tls is not None:
                check(_lib.ws_server_set_tls(ptr, tls.pointer))
            if static_dir is not None:
                check(_lib.ws_server_set_static_dir(ptr, os.fsencode(static_dir)))
            if health_path is not None:
                check(_lib.ws_server_set_health_path(ptr, health_path.encode()))
            if backplane is not None:
                check(_lib.ws_server_set_backplane(ptr, backplane.encode()))
        except BaseException:
            self._free()
            raise

    # --- handlers ------------------------------------------------------------

    def _setter(name: str) -> Callable[["Server", F], F]:  # type: ignore[misc]
        def set_handler(self: "Server", fn: F) -> F:
            self._check_handler(name, fn)
            self._handlers[name] = fn
            return fn

        set_handler.__name__ = name
        set_handler.__doc__ = f"Sets the {name} handler; usable as a decorator (@server.{name})."
        return set_handler

    on_open = _setter("on_open")  # (conn, request) -> None/0 to accept, an HTTP status 400..599, or DEFER
    on_message = _setter("on_message")  # (conn, data: str | bytes)
    on_close = _setter("on_close")  # (conn, code, reason)
    on_error = _setter("on_error")  # (conn, WsError); on_close follows
    on_drain = _setter("on_drain")  # (conn): sending may resume
    on_log = _setter("on_log")  # (level, message); replaces the "wsserver" logger for library lines
    on_http = _setter("on_http")  # (HttpRequest) -> HttpAnswer: a status, (status, content_type, body) or None
    del _setter

    def _check_handler(self, name: str, fn: Optional[Callable[..., Any]]) -> None:
        if fn is not None and self._event_mode and name != "on_log":
            raise ValueError(f"{name} never runs with event_queue=True: read server.events() instead")

    def _report(self, where: str, exc: BaseException) -> None:
        """A handler raised: log it, never let it reach C."""
        logger.error("wsserver: %s handler raised", where, exc_info=exc)
        log = self._handlers.get("on_log")
        if log is not None and where != "on_log":
            try:
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                log(LogLevel.ERROR, f"{where} handler raised: {text.rstrip()}")
            except Exception as e:
                logger.error("wsserver: on_log handler raised", exc_info=e)

    def _dispatch(self, name: str, *args: Any) -> None:
        fn = self._handlers.get(name)
        if fn is not None:
            try:
                fn(*args)
            except Exception as e:
                self._report(name, e)

    def _dispatch_open(self, conn: int, req: int) -> int:
        fn = self._handlers.get("on_open")
        if fn is None:
            return 0
        try:
            answer = fn(conn, copy_request(req))
        except Exception as e:
            self._report("on_open", e)
            return 500
        if answer is DEFER:
            return _lib.WS_OPEN_DEFER
        if answer is None or answer == 0:
            return 0
        if isinstance(answer, int) and 400 <= answer <= 599:
            return answer
        self._report(
            "on_open", ValueError(f"on_open returned {answer!r}, not None/0, an HTTP status 400..599 or DEFER")
        )
        return 500

    def _dispatch_http(self, id: int, req: int) -> int:
        fn = self._handlers.get("on_http")
        if fn is None:
            return 404
        try:
            answer = fn(copy_http_request(id, req))
            if answer is None:
                return 0
            if isinstance(answer, tuple) and len(answer) == 3 and isinstance(answer[0], int):
                status, content_type, body = answer
                self.respond(id, status, body, content_type)
                return 0
            if isinstance(answer, int) and not isinstance(answer, bool) and 100 <= answer <= 599:
                return answer
            raise ValueError(
                f"on_http returned {answer!r}, not a status 100..599, (status, content_type, body) or None"
            )
        except Exception as e:
            self._report("on_http", e)
            return 500

    def _log_line(self, level: int, message: str) -> None:
        """A library log line: to on_log if set, else to logger "wsserver"."""
        log = self._handlers.get("on_log")
        if log is None:
            logger.log(_PY_LEVEL.get(level, logging.DEBUG), "%s", message)
            return
        try:
            log(LogLevel(level) if level in _PY_LEVEL else level, message)
        except Exception as e:
            self._report("on_log", e)

    # --- life ----------------------------------------------------------------

    @property
    def _handle(self) -> int:
        if self._ptr is None:
            raise ClosedError(_lib.WS_ERR_CLOSED, "the server is closed and freed")
        return self._ptr

    def listen(self, host: str, port: int) -> None:
        """Binds host:port and starts serving; returns once it listens.
        host: an IPv4/IPv6 literal or "localhost"; port 0 picks a free one."""
        if self._handlers.get("on_http") is not None and not self._http_option_given:
            check(_lib.ws_server_set_option(self._handle, OPTIONS["http_handler"].id, 1))
        check(_lib.ws_server_listen(self._handle, host.encode(), port))
        self._soft_limit = get_option(self._handle, "send_queue_limit")

    @property
    def port(self) -> int:
        """The bound port (after listen)."""
        out = ctypes.c_uint16()
        check(_lib.ws_server_port(self._handle, ctypes.byref(out)))
        return out.value

    @property
    def options(self) -> Dict[str, int]:
        """Every option's value in force (the staged one before listen)."""
        return {name: get_option(self._handle, name) for name in OPTIONS}

    def close(self, grace: float = 1.0) -> None:
        """Stops accepting, sends 1001 to every client after what is queued,
        waits up to `grace` seconds for the close handshakes and returns when
        no handler can run any more. From inside a handler it only starts the
        close. Idempotent. Event mode: the remaining CLOSE events can still be
        taken (events() ends after them)."""
        if self._ptr is None:
            return
        check(_lib.ws_server_close(self._ptr, max(0, int(grace * 1000))))
        self._closed = True
        self._release_all()

    async def aclose(self, grace: float = 1.0) -> None:
        """close() on a worker thread, so that this loop keeps draining
        events (the close handshakes need the event queue to move)."""
        await asyncio.get_running_loop().run_in_executor(None, self.close, grace)

    def _free(self) -> None:
        ptr, self._ptr = self._ptr, None
        _servers.pop(self._id, None)
        try:
            if self._pump is not None:
                self._pump.stop()  # before the fd goes away with the server
            self._release_all()
        finally:
            if ptr:
                _lib.ws_server_free(ptr)

    def __del__(self) -> None:
        if getattr(self, "_ptr", None) is not None:
            try:
                self._free()
            except Exception:
                pass  # interpreter shutdown: nothing left to report to

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
        self._free()

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
        self._free()

    # --- sending -------------------------------------------------------------

    def send(self, conn: int, data: Data, compress: bool = True) -> SendStatus:
        """Queues one message (str: text, bytes: binary); never blocks on the
        network. Any thread, handlers included. compress=False sends it
        uncompressed even where the client negotiated permessage-deflate
        (data that is compressed already). Refusals raise ClosedError,
        NoSuchConnError, DroppedError or InvalidUtf8Error."""
        raw, kind = _payload(data)
        flags = 0 if compress else _lib.WS_SEND_NO_COMPRESS
        return SendStatus(check(_lib.ws_server_send_ex(self._handle, conn, raw, len(raw), kind, flags)))

    def broadcast(self, data: Data, except_: Optional[int] = None) -> int:
        """Queues one message for every open connection but `except_`; the
        frame is encoded once. Returns how many connections queued it."""
        raw, kind = _payload(data)
        n = ctypes.c_size_t()
        check(_lib.ws_server_broadcast(self._handle, raw, len(raw), kind, except_ or 0, ctypes.byref(n)))
        return n.value

    def disconnect(self, conn: int, code: int = 1000, reason: str = "") -> None:
        """Starts the close handshake (queued messages go out first)."""
        check(_lib.ws_server_disconnect(self._handle, conn, code, reason.encode("utf-8", "surrogatepass")))

    def queued_bytes(self, conn: int) -> int:
        """Bytes queued for `conn` and not yet written to its socket."""
        n = ctypes.c_size_t()
        check(_lib.ws_server_queued_bytes(self._handle, conn, ctypes.byref(n)))
        return n.value

    def reload_tls(self, tls: TlsConfig) -> None:
        """Swaps certificate, key and CA for new handshakes; open connections
        carry on. On failure (TlsError) the old certificate stays."""
        check(_lib.ws_server_reload_tls(self._handle, tls.pointer))

    async def send_async(self, conn: int, data: Data) -> SendStatus:
        """send(), then, on BACKPRESSURE, waits until the connection's queue
        is back under send_queue_limit (or it closed). Sending only with this
        keeps every queue under its hard limit."""
        status = self.send(conn, data)
        if status is SendStatus.BACKPRESSURE:
            await self.drained(conn)
        return status

    async def drained(self, conn: int) -> None:
        """Returns once `conn` queues less than send_queue_limit, or is gone."""
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[None]" = loop.create_future()
        with self._waiters_lock:
            self._waiters.setdefault(conn, []).append((loop, fut))
        if self._event_mode:
            self._pump_for(loop)  # the drain arrives as an event: someone must read them
        try:  # the drain may have come before we registered: look
            under = self._closed or self.queued_bytes(conn) < self._soft_limit
        except WsError:
            under = True  # closed or unknown: nothing to wait for
        if under:
            self._release(conn)
        await fut

    def waiting_for_drain(self) -> bool:
        """Whether some send_async waits (the pump then keeps reading)."""
        return bool(self._waiters)

    def _release(self, conn: int) -> None:
        with self._waiters_lock:
            waiters = self._waiters.pop(conn, [])
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:
                pass  # that loop is closed

    def _release_all(self) -> None:
        for conn in list(self._waiters):
            self._release(conn)

    # --- event mode ----------------------------------------------------------

    def event_fd(self) -> int:
        """The event queue's fd (readable while events wait); owned by the
        server: do not read or close it. After listen, in event mode."""
        fd = ctypes.c_int()
        check(_lib.ws_server_event_fd(self._handle, ctypes.byref(fd)))
        return fd.value

    def poll(self, timeout: Optional[float] = 0) -> Optional[Event]:
        """Takes the next event, waiting up to `timeout` seconds (None: no
        limit). None on timeout; ClosedError once the server is closed and
        every event taken. One poller at a time (events() is one)."""
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        out = ctypes.POINTER(_lib.ws_event)()
        with self._poll_lock:
            rc = _lib.ws_server_poll(self._handle, ms, ctypes.byref(out))
            if rc == _lib.WS_ERR_TIMEOUT:
                return None
            check(rc)
            try:
                ev = Event.copy(self, out.contents)
            finally:
                _lib.ws_event_free(out)
        if ev.type in (EventType.CLOSE, EventType.DRAIN):
            self._release(ev.conn)
        elif ev.type == EventType.LOG:
            self._log_line(ev.code, ev.text)
        return ev

    def _pump_for(self, loop: asyncio.AbstractEventLoop) -> Pump:
        if self._pump is None:
            self._pump = Pump(self, loop)
        elif self._pump.loop is not loop:
            raise RuntimeError("this server's events are already read on another event loop")
        return self._pump

    def events(self) -> AsyncIterator[Event]:
        """`async for event in server.events()`: every event until the server
        is closed and drained. Answer OPEN events with event.accept() or
        event.refuse(status) unless auto_accept=True."""
        return iterate(self._pump_for(asyncio.get_running_loop()))

    # --- handshake control (an open that waits: event mode, DEFER, or inside on_open) ---

    def add_header(self, conn: int, name: str, value: str) -> None:
        """Adds `name: value` (e.g. Set-Cookie) to the answer to conn's
        waiting open, the 101 or the refusal, or to the answer to a plain HTTP
        request `conn` before respond() (ws_conn_add_header). Any thread."""
        check(_lib.ws_conn_add_header(self._handle, conn, name.encode(), value.encode("utf-8", "surrogatepass")))

    def accept(self, conn: int, subprotocol: Optional[str] = None, headers: Optional[Headers] = None) -> None:
        """Accepts an open that waits for its answer (ws_conn_accept): an
        OPEN event, an on_open that returned DEFER, or from inside on_open.
        subprotocol: None for the server's own choice, else one the client
        offered. headers: added first (add_header). Any thread."""
        for name, value in _pairs(headers):
            self.add_header(conn, name, value)
        check(_lib.ws_conn_accept(self._handle, conn, None if subprotocol is None else subprotocol.encode()))

    def refuse(
        self,
        conn: int,
        status: int = 403,
        body: Optional[Union[str, bytes]] = None,
        headers: Optional[Headers] = None,
    ) -> None:
        """Refuses an open that waits for its answer with an HTTP status
        400..599 (ws_conn_refuse), and a body (str: UTF-8; at most 64 KiB,
        text/plain unless a Content-Type header is given) when `body` is not
        None (ws_conn_refuse_with_body). headers: added first. Any thread."""
        for name, value in _pairs(headers):
            self.add_header(conn, name, value)
        if body is None:
            check(_lib.ws_conn_refuse(self._handle, conn, status))
        else:
            raw = _body(body)
            check(_lib.ws_conn_refuse_with_body(self._handle, conn, status, raw, len(raw)))

    # --- plain HTTP ------------------------------------------------------------

    def respond(
        self,
        id: int,
        status: int,
        body: Union[str, bytes, bytearray, memoryview] = b"",
        content_type: Optional[str] = None,
        headers: Optional[Headers] = None,
    ) -> None:
        """Answers plain HTTP request `id` (HttpRequest.id, HttpEvent.conn)
        with `status` (100..599), `body` (str: UTF-8) and `content_type`
        (None: none), after adding `headers` (ws_http_respond). Once only
        (StateError after); ClosedError once the request timed out (503).
        Any thread, handlers included."""
        for name, value in _pairs(headers):
            self.add_header(id, name, value)
        raw = _body(body)
        ctype = None if content_type is None else content_type.encode()
        check(_lib.ws_http_respond(self._handle, id, status, ctype, raw, len(raw)))

    # --- topics and statistics -----------------------------------------------

    def subscribe(self, conn: int, topic: str) -> None:
        """Subscribes `conn` to `topic` (1..1024 bytes of UTF-8); already
        subscribed is fine; ends with the connection. Any thread."""
        check(_lib.ws_conn_subscribe(self._handle, conn, topic.encode("utf-8", "surrogatepass")))

    def unsubscribe(self, conn: int, topic: str) -> None:
        """Unsubscribes `conn` from `topic`; not subscribed is fine."""
        check(_lib.ws_conn_unsubscribe(self._handle, conn, topic.encode("utf-8", "surrogatepass")))

    def publish(self, topic: str, data: Data, except_: Optional[int] = None) -> int:
        """Queues one message (str: text, bytes: binary) for every subscriber
        of `topic` but `except_`, encoded once. Returns how many connections
        queued it (0 for a topic nobody subscribes to)."""
        raw, kind = _payload(data)
        n = ctypes.c_size_t()
        check(
            _lib.ws_server_publish(
                self._handle, topic.encode("utf-8", "surrogatepass"), raw, len(raw), kind, except_ or 0,
                ctypes.byref(n),
            )
        )
        return n.value

    def subscribers(self, topic: str) -> int:
        """How many connections are subscribed to `topic` now."""
        n = ctypes.c_size_t()
        check(_lib.ws_server_subscribers(self._handle, topic.encode("utf-8", "surrogatepass"), ctypes.byref(n)))
        return n.value

    def stats(self) -> Stats:
        """A snapshot of the statistics (ws_server_stats); cheap, any thread."""
        out = _lib.ws_stats()
        check(_lib.ws_server_stats_sized(self._handle, ctypes.byref(out), ctypes.sizeof(out)))
        return Stats(*(int(getattr(out, name)) for name in _STATS_FIELDS))


def _resolve(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


def _signature() -> inspect.Signature:
    """Server's signature as help() shows it: every option the library
    knows, with the library's default."""
    base = inspect.signature(Server.__init__)
    params = [p for p in base.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params += [
        inspect.Parameter(info.name, inspect.Parameter.KEYWORD_ONLY, default=info.default, annotation=int)
        for info in OPTIONS.values()
    ]
    return base.replace(parameters=params)


Server.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
