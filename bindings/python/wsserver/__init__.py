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
from .events import Event, EventType, Kind
from .options import OPTIONS, OptionInfo
from .request import DEFAULT_HEADERS, Request
from .server import LogLevel, SendStatus, Server
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
    "DEFAULT_HEADERS",
    "DroppedError",
    "Event",
    "EventType",
    "InvalidArgumentError",
    "InvalidUtf8Error",
    "IoError",
    "Kind",
    "LogLevel",
    "NoSuchConnError",
    "NullError",
    "OPTIONS",
    "OptionInfo",
    "PanicError",
    "ProtocolError",
    "ReasonTooLongError",
    "Request",
    "SendStatus",
    "Server",
    "StateError",
    "TlsConfig",
    "TlsError",
    "TooBigError",
    "WsError",
    "WsTimeoutError",
    "library_path",
]
