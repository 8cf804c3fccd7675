"""Keeping secrets out of the server's logs.

:class:`RedactSecrets` is a :class:`logging.Filter` that replaces the configured bearer tokens
and any ``Bearer <x>`` / ``authorization: <x>`` string in a record (message and traceback)
with ``[REDACTED]``; :func:`install_redaction` attaches one to every root handler. This is the
backstop: nothing in the server logs metadata or presented credentials in the first place.
"""

from __future__ import annotations

import logging
import re
from typing import Callable

_BEARER = re.compile(r"(?i)(bearer\s+|authorization['\"]?\s*[:=,]\s*['\"]?(?:bearer\s+)?)[^\s'\",)]+")


class RedactSecrets(logging.Filter):
    """Replaces configured secrets and any ``Bearer <x>`` / ``authorization: <x>`` in log records."""

    def __init__(self, secrets: list[str]):
        super().__init__("toolgym-redact")
        self._secrets = [s for s in secrets if s]

    def scrub(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, "[REDACTED]")
        return _BEARER.sub(lambda m: m.group(1) + "[REDACTED]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler's own error path
            return True
        clean = self.scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


def install_redaction(secrets: list[str]) -> Callable[[], None]:
    """Attach a :class:`RedactSecrets` to every handler of the root logger; returns an undo."""
    filt = RedactSecrets(secrets)
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for h in handlers:
        h.addFilter(filt)

    def undo() -> None:
        for h in handlers:
            h.removeFilter(filt)

    return undo
