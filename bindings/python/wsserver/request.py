"""The handshake request (and a plain HTTP request), copied out of the C
`ws_request` while it is valid (during on_open / on_http, or until
ws_event_free), into a plain object."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from . import _lib


@dataclass(frozen=True)
class Request:
    """What the client asked for in its handshake."""

    path: str
    query: str
    peer: str  # "127.0.0.1:51234" or "[::1]:51234"
    subprotocol: Optional[str]  # the server's choice, None when none agreed
    client_subject: Optional[str]  # mutual TLS: e.g. "CN=alice,O=Example"
    offered_subprotocols: Tuple[str, ...]
    headers: Tuple[Tuple[str, str], ...] = ()
    """Every header line as (name, value), names as the client sent them, in
    its order; a repeated name appears each time (ws_request_header_at)."""

    def header(self, name: str) -> Optional[str]:
        """The first header called `name` (case-insensitive), None when absent."""
        folded = name.lower()
        for key, value in self.headers:
            if key.lower() == folded:
                return value
        return None


@dataclass(frozen=True)
class HttpRequest(Request):
    """A plain HTTP request (no upgrade) waiting for its answer: `id` is the
    number to answer with (server.respond(id, ...), from any thread)."""

    id: int = 0
    method: str = "GET"
    body: bytes = b""  # the Content-Length bytes (at most http_max_body)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (with replacement)."""
        return self.body.decode("utf-8", "replace")


def _text(raw: Optional[bytes]) -> Optional[str]:
    return None if raw is None else raw.decode("utf-8", "replace")


def copy_request(req: int) -> Request:
    """Reads every field of a live `const ws_request *` into a Request."""
    return Request(**_fields(req))


def copy_http_request(id: int, req: int) -> HttpRequest:
    """Reads a live plain HTTP request, with its id, into an HttpRequest."""
    n = ctypes.c_size_t()
    body = _lib.ws_request_body(req, ctypes.byref(n))
    return HttpRequest(
        **_fields(req),
        id=id,
        method=_text(_lib.ws_request_method(req)) or "",
        body=ctypes.string_at(body, n.value) if body and n.value else b"",
    )


def _fields(req: int) -> Dict[str, Any]:
    offered: List[str] = []
    while True:
        name = _lib.ws_request_offered_subprotocol(req, len(offered))
        if name is None:
            break
        offered.append(name.decode("utf-8", "replace"))
    headers: List[Tuple[str, str]] = []
    name_p, value_p = ctypes.c_char_p(), ctypes.c_char_p()
    for i in range(_lib.ws_request_header_count(req)):
        if _lib.ws_request_header_at(req, i, ctypes.byref(name_p), ctypes.byref(value_p)) != _lib.WS_OK:
            break
        headers.append((_text(name_p.value) or "", _text(value_p.value) or ""))
    return dict(
        path=_text(_lib.ws_request_path(req)) or "",
        query=_text(_lib.ws_request_query(req)) or "",
        peer=_text(_lib.ws_request_peer(req)) or "",
        subprotocol=_text(_lib.ws_request_subprotocol(req)),
        client_subject=_text(_lib.ws_request_client_subject(req)),
        offered_subprotocols=tuple(offered),
        headers=tuple(headers),
    )
