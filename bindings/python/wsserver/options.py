"""The server options, read from the C library (ws_option_info) so that
names, defaults, ranges and reasons have one source of truth: the core."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Dict, Mapping

from . import _lib
from ._errors import check


@dataclass(frozen=True)
class OptionInfo:
    """One WS_OPT_* option as the library describes it."""

    id: int
    name: str  # the keyword argument: "max_message_size" for WS_OPT_MAX_MESSAGE_SIZE
    c_name: str
    default: int
    min: int
    max: int
    why: str


_MAX_OPTION_ID = 64  # ids are small and appended; unknown ones are skipped


def _keyword(c_name: str) -> str:
    name = c_name.lower()
    return name[len("ws_opt_"):] if name.startswith("ws_opt_") else name


def _read() -> Dict[str, OptionInfo]:
    found: Dict[str, OptionInfo] = {}
    for option in range(1, _MAX_OPTION_ID + 1):
        name, why = ctypes.c_char_p(), ctypes.c_char_p()
        default, lo, hi = ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint64()
        rc = _lib.ws_option_info(
            option, ctypes.byref(name), ctypes.byref(default), ctypes.byref(lo), ctypes.byref(hi), ctypes.byref(why)
        )
        if rc != _lib.WS_OK:
            continue
        c_name = (name.value or b"").decode()
        info = OptionInfo(option, _keyword(c_name), c_name, default.value, lo.value, hi.value,
                          (why.value or b"").decode())
        found[info.name] = info
    return found


OPTIONS: Mapping[str, OptionInfo] = _read()
"""Every option the loaded library knows, by keyword name."""


def option_ids(values: Mapping[str, int]) -> Dict[int, int]:
    """Checks keyword names against the library's options: {id: value}."""
    out: Dict[int, int] = {}
    for name, value in values.items():
        info = OPTIONS.get(name)
        if info is None:
            raise TypeError(f"unknown wsserver option {name!r}; the library has: {', '.join(OPTIONS)}")
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int):
            raise TypeError(f"option {name} takes an int, not {type(value).__name__}")
        if value < 0:
            raise ValueError(f"option {name} cannot be negative ({value})")
        out[info.id] = value
    return out


def get_option(srv: int, name: str) -> int:
    """The value in force on a server (the staged one before listen)."""
    info = OPTIONS[name]
    value = ctypes.c_uint64()
    check(_lib.ws_server_get_option(srv, info.id, ctypes.byref(value)))
    return value.value
