"""Transport security, authentication and per-client limits of the toolgym server.

The public entry point; the implementation is split by when it runs:

- :mod:`toolgym.env.server.credentials` (startup): bearer tokens (:func:`load_tokens`,
  :class:`Tokens`), TLS credentials (:func:`server_credentials`), :func:`is_loopback`, and
  :class:`SecurityConfigError` for settings that cannot work.
- :mod:`toolgym.env.server.guard` (every RPC): the :class:`Guard` server interceptor
  (authentication, safe request decoding, client identity, per-client :class:`Limits`) and
  :func:`current_client`. Its docstring gives the checks and their order.
- :mod:`toolgym.env.server.redaction` (every log record): :class:`RedactSecrets` and
  :func:`install_redaction`, which keep tokens and ``Bearer …`` strings out of the logs.

Import from here (``from toolgym.env.server import security``). Each name below is the
implementation module's own object; patch it on the module that defines it, not here.
"""

from __future__ import annotations

from toolgym.env.server.credentials import (
    MIN_TOKEN_CHARS,
    TOKEN_ENV,
    SecurityConfigError,
    Tokens,
    is_loopback,
    load_tokens,
    server_credentials,
)
from toolgym.env.server.guard import OPEN_METHODS, Guard, Limits, current_client, identify
from toolgym.env.server.redaction import RedactSecrets, install_redaction

__all__ = [
    "MIN_TOKEN_CHARS",
    "OPEN_METHODS",
    "TOKEN_ENV",
    "Guard",
    "Limits",
    "RedactSecrets",
    "SecurityConfigError",
    "Tokens",
    "current_client",
    "identify",
    "install_redaction",
    "is_loopback",
    "load_tokens",
    "server_credentials",
]
