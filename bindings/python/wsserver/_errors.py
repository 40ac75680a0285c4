"""Every failing C call becomes a WsError subclass that carries the
ws_result number, its C name and the C message (ws_last_error)."""
from __future__ import annotations

from typing import Dict, Optional, Type

from . import _lib


class WsError(Exception):
    """A wsserver call failed. `code` is the ws_result number (negative),
    `name` its C name (e.g. "WS_ERR_CLOSED"), `message` the C message."""

    code: int
    name: str
    message: str

    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        self.name = result_name(code)
        self.message = message
        super().__init__(f"{self.name}: {message}" if message else self.name)


class NullError(WsError):
    """WS_ERR_NULL: a required pointer was NULL (a bug in these bindings)."""


class InvalidArgumentError(WsError, ValueError):
    """WS_ERR_INVALID_ARGUMENT: out of range or malformed."""


class StateError(WsError):
    """WS_ERR_STATE: not allowed now (option after listen, listen twice...)."""


class BadHostError(WsError, ValueError):
    """WS_ERR_BAD_HOST: not an IP literal or "localhost"."""


class AddrInUseError(WsError):
    """WS_ERR_ADDR_IN_USE."""


class IoError(WsError):
    """WS_ERR_IO: another operating-system error."""


class NoSuchConnError(WsError, KeyError):
    """WS_ERR_NO_SUCH_CONN: this server never issued that connection id."""

    __str__ = WsError.__str__  # KeyError would quote the message


class ClosedError(WsError):
    """WS_ERR_CLOSED: the connection or server is closed or closing."""


class DroppedError(WsError):
    """WS_ERR_DROPPED: refused, the send queue would pass its hard limit."""


class InvalidUtf8Error(WsError, ValueError):
    """WS_ERR_INVALID_UTF8."""


class BadCloseCodeError(WsError, ValueError):
    """WS_ERR_BAD_CLOSE_CODE: a close code an endpoint may not send."""


class ReasonTooLongError(WsError, ValueError):
    """WS_ERR_REASON_TOO_LONG: a close reason over 123 bytes."""


class ProtocolError(WsError):
    """WS_ERR_PROTOCOL: the client broke the protocol (on_error)."""


class TooBigError(WsError):
    """WS_ERR_TOO_BIG: the client sent too much (on_error)."""


class WsTimeoutError(WsError):
    """WS_ERR_TIMEOUT: a handshake, idle or close timeout (on_error)."""


class TlsError(WsError):
    """WS_ERR_TLS: TLS configuration or handshake error."""


class PanicError(WsError):
    """WS_ERR_PANIC: an internal error in the library; please report it."""


# ws_result numbers are stable (the header's promise), so this map is too.
_BY_CODE: Dict[int, Type[WsError]] = {
    -1: NullError,
    -2: InvalidArgumentError,
    -3: StateError,
    -4: BadHostError,
    -5: AddrInUseError,
    -6: IoError,
    -7: NoSuchConnError,
    -8: ClosedError,
    -9: DroppedError,
    -10: InvalidUtf8Error,
    -11: BadCloseCodeError,
    -12: ReasonTooLongError,
    -13: ProtocolError,
    -14: TooBigError,
    -15: WsTimeoutError,
    -16: TlsError,
    -17: PanicError,
}


def result_name(code: int) -> str:
    """The C name of a ws_result ("WS_UNKNOWN" for other numbers)."""
    return (_lib.ws_result_name(code) or b"WS_UNKNOWN").decode()


def last_error() -> str:
    """This thread's last C error message."""
    return (_lib.ws_last_error() or b"").decode("utf-8", "replace")


def error_for(code: int, message: Optional[str] = None) -> WsError:
    """The exception for `code`, with `message` or this thread's C message."""
    cls = _BY_CODE.get(code, WsError)
    return cls(code, last_error() if message is None else message)


def check(code: int) -> int:
    """Returns a non-negative result; raises the matching WsError otherwise.
    Must run right after the failing call, on its thread (ws_last_error is
    per thread and reset by the next call)."""
    if code < 0:
        raise error_for(code)
    return code
