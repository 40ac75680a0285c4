"""wsserver: Python bindings (ctypes) for libwsserver, a WebSocket server
written in Rust. See bindings/python/README.md and examples/."""
from . import _lib
from ._errors import (
    AddrInUseError,
    BadCloseCodeError,
    BadHostError,
    ClosedError,
    DroppedError,
    InvalidArgumentError,
    InvalidUtf8Error,
    IoError,
    NoSuchConnError,
    NullError,
    PanicError,
    ProtocolError,
    ReasonTooLongError,
    StateError,
    TlsError,
    TooBigError,
    WsError,
    WsTimeoutError,
)
from .events import Event, EventType, HttpEvent, Kind
from .options import OPTIONS, OptionInfo
from .request import HttpRequest, Request
from .server import DEFER, Headers, HttpAnswer, LogLevel, OpenAnswer, SendStatus, Server, Stats
from .tls import TlsConfig

__version__: str = _lib.ws_version().decode()
"""The library's version; the package's is the same (both from Cargo.toml)."""

library_path: str = _lib.path
"""The libwsserver file that was loaded."""

__all__ = [
    "AddrInUseError",
    "BadCloseCodeError",
    "BadHostError",
    "ClosedError",
    "DEFER",
    "DroppedError",
    "Event",
    "Headers",
    "HttpAnswer",
    "HttpEvent",
    "HttpRequest",
    "EventType",
    "InvalidArgumentError",
    "InvalidUtf8Error",
    "IoError",
    "Kind",
    "LogLevel",
    "NoSuchConnError",
    "NullError",
    "OPTIONS",
    "OpenAnswer",
    "OptionInfo",
    "PanicError",
    "ProtocolError",
    "ReasonTooLongError",
    "Request",
    "SendStatus",
    "Server",
    "StateError",
    "Stats",
    "TlsConfig",
    "TlsError",
    "TooBigError",
    "WsError",
    "WsTimeoutError",
    "library_path",
]
