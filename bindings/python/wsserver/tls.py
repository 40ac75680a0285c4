"""TLS material for wss://: certificate chain, private key and, for mutual
TLS, the CA that client certificates must chain to. Each piece is a file
path (str or os.PathLike) or PEM content (bytes)."""
from __future__ import annotations

import os
from typing import Any, Callable, Optional, Union

from . import _lib
from ._errors import check

PathOrPem = Union[str, "os.PathLike[str]", bytes]


def _set(cfg: int, value: PathOrPem, from_file: Callable[..., int], from_pem: Callable[..., int],
         *extra: Optional[bytes]) -> None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        pem = bytes(value)
        check(from_pem(cfg, pem, len(pem), *extra))
    else:
        check(from_file(cfg, os.fsencode(value), *extra))


class TlsConfig:
    """A checked ws_tls_config. Errors (unreadable file, wrong password,
    unsupported key) raise TlsError here, with the C message naming the
    file and the reason; a key that does not match the certificate is
    reported when a server takes the configuration."""

    def __init__(
        self,
        cert: PathOrPem,
        key: PathOrPem,
        *,
        password: Union[str, bytes, None] = None,
        ca: Optional[PathOrPem] = None,
    ) -> None:
        self._ptr: Optional[int] = _lib.ws_tls_config_new()
        if not self._ptr:
            raise MemoryError("ws_tls_config_new returned NULL")
        try:
            pw = password.encode() if isinstance(password, str) else password
            _set(self._ptr, cert, _lib.ws_tls_config_set_cert_file, _lib.ws_tls_config_set_cert_pem)
            _set(self._ptr, key, _lib.ws_tls_config_set_key_file, _lib.ws_tls_config_set_key_pem, pw)
            if ca is not None:
                _set(self._ptr, ca, _lib.ws_tls_config_set_ca_file, _lib.ws_tls_config_set_ca_pem)
        except BaseException:
            self.close()
            raise

    @property
    def pointer(self) -> int:
        """The `ws_tls_config *`, for the library's set/reload calls."""
        if not self._ptr:
            raise ValueError("this TlsConfig is closed")
        return self._ptr

    def close(self) -> None:
        """Frees the C configuration (servers that took it keep working)."""
        ptr, self._ptr = self._ptr, None
        if ptr:
            _lib.ws_tls_config_free(ptr)

    def __del__(self) -> None:
        self.close()
