"""The handshake request, copied out of the C `ws_request` while it is
valid (during on_open, or until ws_event_free), into a plain object."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from . import _lib

DEFAULT_HEADERS: Tuple[str, ...] = (
    "host",
    "origin",
    "user-agent",
    "cookie",
    "authorization",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "sec-websocket-version",
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
)
"""Headers copied into Request.headers. The C API looks headers up by name
(it cannot list them), so a server copies these plus the names given in
Server(request_headers=...)."""


@dataclass(frozen=True)
class Request:
    """What the client asked for in its handshake."""

    path: str
    query: str
    peer: str  # "127.0.0.1:51234" or "[::1]:51234"
    subprotocol: Optional[str]  # the server's choice, None when none agreed
    client_subject: Optional[str]  # mutual TLS: e.g. "CN=alice,O=Example"
    offered_subprotocols: Tuple[str, ...]
    headers: Dict[str, str] = field(default_factory=dict)  # lower-case names, the copied ones that were present

    def header(self, name: str) -> Optional[str]:
        """A copied header's value (case-insensitive), None when absent or not copied."""
        return self.headers.get(name.lower())


def _text(raw: Optional[bytes]) -> Optional[str]:
    return None if raw is None else raw.decode("utf-8", "replace")


def copy_request(req: int, header_names: Iterable[str]) -> Request:
    """Reads every field of a live `const ws_request *` into a Request."""
    offered: List[str] = []
    while True:
        name = _lib.ws_request_offered_subprotocol(req, len(offered))
        if name is None:
            break
        offered.append(name.decode("utf-8", "replace"))
    headers: Dict[str, str] = {}
    for name in header_names:
        value = _lib.ws_request_header(req, name.encode())
        if value is not None:
            headers[name.lower()] = value.decode("utf-8", "replace")
    return Request(
        path=_text(_lib.ws_request_path(req)) or "",
        query=_text(_lib.ws_request_query(req)) or "",
        peer=_text(_lib.ws_request_peer(req)) or "",
        subprotocol=_text(_lib.ws_request_subprotocol(req)),
        client_subject=_text(_lib.ws_request_client_subject(req)),
        offered_subprotocols=tuple(offered),
        headers=headers,
    )
