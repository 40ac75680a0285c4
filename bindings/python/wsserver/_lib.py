"""Finds libwsserver, loads it with ctypes and declares every C prototype
used by the package (the one place that knows the C ABI's types)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import POINTER, c_char_p, c_int, c_int32, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import Any, List, Tuple

LIBRARY = "libwsserver.so"
_HERE = Path(__file__).resolve().parent


def _places() -> List[Tuple[str, str]]:
    """(where, path) in the order tried. WSSERVER_LIBRARY, when set, is the
    only place: an override that silently fell back would hide mistakes."""
    override = os.environ.get("WSSERVER_LIBRARY")
    if override:
        return [("WSSERVER_LIBRARY", override)]
    places = [("package dir", str(_HERE / LIBRARY))]
    root = _HERE.parent.parent.parent  # bindings/python/wsserver -> repo root
    if (root / "Cargo.toml").is_file():
        places.append(("source tree", str(root / "target" / "release" / LIBRARY)))
    found = ctypes.util.find_library("wsserver")
    places.append(("ctypes.util.find_library('wsserver')", found or ""))
    return places


def _load() -> Tuple[ctypes.CDLL, str]:
    tried = []
    for where, path in _places():
        if not path:
            tried.append(f"{where}: nothing found")
            continue
        if os.sep in path and not os.path.exists(path):
            tried.append(f"{where}: {path} (no such file)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{where}: {path} ({e})")
    if "WSSERVER_LIBRARY" not in os.environ:
        tried.insert(1, "WSSERVER_LIBRARY: not set")
    raise ImportError(
        "wsserver: cannot load libwsserver; looked in:\n  " + "\n  ".join(tried)
        + "\n(pip install ./bindings/python builds it; or set WSSERVER_LIBRARY to its path)"
    )


lib, path = _load()


class ws_callbacks(ctypes.Structure):
    """The members this package knows (the six original ones and on_http);
    passed with its own size to ws_server_new_sized, so later members stay
    NULL for us."""


ON_OPEN = ctypes.CFUNCTYPE(c_int, c_void_p, c_uint64, c_void_p)
ON_MESSAGE = ctypes.CFUNCTYPE(None, c_void_p, c_uint64, c_void_p, c_size_t, c_uint32)
ON_CLOSE = ctypes.CFUNCTYPE(None, c_void_p, c_uint64, c_uint16, c_void_p, c_size_t)
ON_ERROR = ctypes.CFUNCTYPE(None, c_void_p, c_uint64, c_int, c_char_p)
ON_DRAIN = ctypes.CFUNCTYPE(None, c_void_p, c_uint64)
ON_LOG = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, c_char_p)
ON_HTTP = ctypes.CFUNCTYPE(c_int, c_void_p, c_uint64, c_void_p)

ws_callbacks._fields_ = [
    ("on_open", ON_OPEN),
    ("on_message", ON_MESSAGE),
    ("on_close", ON_CLOSE),
    ("on_error", ON_ERROR),
    ("on_drain", ON_DRAIN),
    ("on_log", ON_LOG),
    ("on_http", ON_HTTP),
]


class ws_event(ctypes.Structure):
    """Read through the pointer ws_server_poll returns, never allocated or
    copied here (the library may append members)."""

    _fields_ = [
        ("type", c_uint32),
        ("conn", c_uint64),
        ("user_data", c_void_p),
        ("data", c_void_p),
        ("len", c_size_t),
        ("kind", c_uint32),
        ("code", c_int32),
        ("request", c_void_p),
    ]


class ws_stats(ctypes.Structure):
    """The members this package knows; passed with its own size to
    ws_server_stats_sized (the library fills just these)."""

    _fields_ = [
        ("open_connections", c_uint64),
        ("handshakes_accepted", c_uint64),
        ("handshakes_refused", c_uint64),
        ("messages_in", c_uint64),
        ("messages_out", c_uint64),
        ("bytes_in", c_uint64),
        ("bytes_out", c_uint64),
        ("queued_bytes", c_uint64),
        ("topics", c_uint64),
        ("subscriptions", c_uint64),
        ("http_requests", c_uint64),
        ("backplane_connected", c_uint64),
        ("backplane_published", c_uint64),
        ("backplane_received", c_uint64),
        ("backplane_local_only", c_uint64),
        ("backplane_reconnects", c_uint64),
        ("memory_held", c_uint64),
    ]


def _fn(name: str, restype: Any, *argtypes: Any) -> Any:
    f = getattr(lib, name, None)
    if f is None:
        raise ImportError(f"wsserver: {path} has no {name}: the library is older than these bindings")
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


srv_p = c_void_p  # const ws_server *
req_p = c_void_p  # const ws_request *
tls_p = c_void_p  # ws_tls_config *
u64_p = POINTER(c_uint64)

ws_last_error = _fn("ws_last_error", c_char_p)
ws_result_name = _fn("ws_result_name", c_char_p, c_int)
ws_version = _fn("ws_version", c_char_p)

ws_request_path = _fn("ws_request_path", c_char_p, req_p)
ws_request_query = _fn("ws_request_query", c_char_p, req_p)
ws_request_header = _fn("ws_request_header", c_char_p, req_p, c_char_p)
ws_request_peer = _fn("ws_request_peer", c_char_p, req_p)
ws_request_subprotocol = _fn("ws_request_subprotocol", c_char_p, req_p)
ws_request_client_subject = _fn("ws_request_client_subject", c_char_p, req_p)
ws_request_offered_subprotocol = _fn("ws_request_offered_subprotocol", c_char_p, req_p, c_size_t)
ws_request_method = _fn("ws_request_method", c_char_p, req_p)
ws_request_body = _fn("ws_request_body", c_void_p, req_p, POINTER(c_size_t))
ws_request_header_count = _fn("ws_request_header_count", c_size_t, req_p)
ws_request_header_at = _fn(
    "ws_request_header_at", c_int, req_p, c_size_t, POINTER(c_char_p), POINTER(c_char_p)
)

ws_server_new_sized = _fn("ws_server_new_sized", srv_p, POINTER(ws_callbacks), c_size_t, c_void_p)
ws_server_free = _fn("ws_server_free", None, srv_p)
ws_server_set_option = _fn("ws_server_set_option", c_int, srv_p, c_uint32, c_uint64)
ws_server_get_option = _fn("ws_server_get_option", c_int, srv_p, c_uint32, u64_p)
ws_option_info = _fn(
    "ws_option_info", c_int, c_uint32, POINTER(c_char_p), u64_p, u64_p, u64_p, POINTER(c_char_p)
)
ws_server_set_subprotocols = _fn("ws_server_set_subprotocols", c_int, srv_p, POINTER(c_char_p), c_size_t)
ws_server_set_allowed_origins = _fn("ws_server_set_allowed_origins", c_int, srv_p, POINTER(c_char_p), c_size_t)
ws_server_set_paths = _fn("ws_server_set_paths", c_int, srv_p, POINTER(c_char_p), c_size_t)
ws_server_set_static_dir = _fn("ws_server_set_static_dir", c_int, srv_p, c_char_p)
ws_server_set_backplane = _fn("ws_server_set_backplane", c_int, srv_p, c_char_p)
ws_server_set_health_path = _fn("ws_server_set_health_path", c_int, srv_p, c_char_p)
ws_http_respond = _fn("ws_http_respond", c_int, srv_p, c_uint64, c_uint16, c_char_p, c_char_p, c_size_t)
ws_server_listen = _fn("ws_server_listen", c_int, srv_p, c_char_p, c_uint16)
ws_server_port = _fn("ws_server_port", c_int, srv_p, POINTER(c_uint16))
ws_server_send_ex = _fn("ws_server_send_ex", c_int, srv_p, c_uint64, c_char_p, c_size_t, c_uint32, c_uint32)
ws_server_broadcast = _fn(
    "ws_server_broadcast", c_int, srv_p, c_char_p, c_size_t, c_uint32, c_uint64, POINTER(c_size_t)
)
ws_server_disconnect = _fn("ws_server_disconnect", c_int, srv_p, c_uint64, c_uint16, c_char_p)
ws_server_queued_bytes = _fn("ws_server_queued_bytes", c_int, srv_p, c_uint64, POINTER(c_size_t))
ws_server_close = _fn("ws_server_close", c_int, srv_p, c_uint32)

ws_conn_accept = _fn("ws_conn_accept", c_int, srv_p, c_uint64, c_char_p)
ws_conn_refuse = _fn("ws_conn_refuse", c_int, srv_p, c_uint64, c_uint16)
ws_conn_refuse_with_body = _fn("ws_conn_refuse_with_body", c_int, srv_p, c_uint64, c_uint16, c_char_p, c_size_t)
ws_conn_add_header = _fn("ws_conn_add_header", c_int, srv_p, c_uint64, c_char_p, c_char_p)
ws_conn_subscribe = _fn("ws_conn_subscribe", c_int, srv_p, c_uint64, c_char_p)
ws_conn_unsubscribe = _fn("ws_conn_unsubscribe", c_int, srv_p, c_uint64, c_char_p)
ws_server_publish = _fn(
    "ws_server_publish", c_int, srv_p, c_char_p, c_char_p, c_size_t, c_uint32, c_uint64, POINTER(c_size_t)
)
ws_server_subscribers = _fn("ws_server_subscribers", c_int, srv_p, c_char_p, POINTER(c_size_t))
ws_server_stats_sized = _fn("ws_server_stats_sized", c_int, srv_p, POINTER(ws_stats), c_size_t)
ws_server_poll = _fn("ws_server_poll", c_int, srv_p, c_int32, POINTER(POINTER(ws_event)))
ws_event_free = _fn("ws_event_free", None, POINTER(ws_event))
ws_server_event_fd = _fn("ws_server_event_fd", c_int, srv_p, POINTER(c_int))

ws_server_set_tls = _fn("ws_server_set_tls", c_int, srv_p, tls_p)
ws_server_reload_tls = _fn("ws_server_reload_tls", c_int, srv_p, tls_p)
ws_tls_config_new = _fn("ws_tls_config_new", tls_p)
ws_tls_config_free = _fn("ws_tls_config_free", None, tls_p)
ws_tls_config_set_cert_file = _fn("ws_tls_config_set_cert_file", c_int, tls_p, c_char_p)
ws_tls_config_set_cert_pem = _fn("ws_tls_config_set_cert_pem", c_int, tls_p, c_char_p, c_size_t)
ws_tls_config_set_key_file = _fn("ws_tls_config_set_key_file", c_int, tls_p, c_char_p, c_char_p)
ws_tls_config_set_key_pem = _fn("ws_tls_config_set_key_pem", c_int, tls_p, c_char_p, c_size_t, c_char_p)
ws_tls_config_set_ca_file = _fn("ws_tls_config_set_ca_file", c_int, tls_p, c_char_p)
ws_tls_config_set_ca_pem = _fn("ws_tls_config_set_ca_pem", c_int, tls_p, c_char_p, c_size_t)

# Stable ABI numbers (the header's #defines; result codes live in _errors).
WS_TEXT = 1
WS_BINARY = 2
WS_OK = 0
WS_OPEN_DEFER = 1
WS_SEND_NO_COMPRESS = 1
WS_BACKPRESSURE = 1
WS_ERR_CLOSED = -8
WS_ERR_TIMEOUT = -15
