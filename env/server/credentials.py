"""Server credentials from configuration: bearer tokens, TLS material, the loopback check.

Everything here runs once at startup and either returns what the server needs or raises
:class:`SecurityConfigError` with a message that names the flag and the fix:

- :func:`load_tokens`: accepted bearer tokens from ``--auth-token-file`` (one token per line,
  ``TOKEN`` or ``NAME TOKEN``; the name identifies the client, one per tenant) or
  ``$TOOLGYM_AUTH_TOKEN``. Only SHA-256 digests are compared (see :class:`Tokens`).
- :func:`server_credentials`: gRPC TLS credentials from PEM files, with mTLS when a client CA
  is given.
- :func:`is_loopback`: whether a bind host is loopback (the exposure check in ``app``).

The RPC-time checks that use the tokens live in :mod:`toolgym.env.server.guard`; keeping them
out of the logs, in :mod:`toolgym.env.server.redaction`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
from dataclasses import dataclass, field

import grpc

# The logger of the module this was split from, so log configuration and filters keep working.
log = logging.getLogger("toolgym.server.security")

TOKEN_ENV = "TOOLGYM_AUTH_TOKEN"
MIN_TOKEN_CHARS = 16
_TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class SecurityConfigError(ValueError):
    """A TLS/auth setting that cannot work; the message names the flag and the fix."""


# ---------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class Tokens:
    """Accepted bearer tokens by name (the name identifies the client; the digest is compared)."""

    digests: tuple[tuple[str, bytes], ...]
    values: tuple[str, ...] = field(default=(), repr=False)  # only for log redaction; never printed

    def secrets(self) -> list[str]:
        return list(self.values)

    def match(self, presented: str) -> str | None:
        """The name of the token ``presented`` equals, or None. Compares against every token."""
        got = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for name, digest in self.digests:
            if hmac.compare_digest(got, digest) and found is None:
                found = name
        return found


def _make_tokens(pairs: list[tuple[str, str]], source: str) -> Tokens:
    for name, tok in pairs:
        if len(tok) < MIN_TOKEN_CHARS:
            raise SecurityConfigError(f"token {name!r} from {source} has {len(tok)} characters; use at least {MIN_TOKEN_CHARS} ({_TOKEN_HINT})")
    return Tokens(digests=tuple((n, hashlib.sha256(t.encode()).digest()) for n, t in pairs), values=tuple(t for _, t in pairs))


def load_tokens(path: str = "", *, environ: dict[str, str] | None = None) -> Tokens | None:
    """Tokens from ``--auth-token-file`` (preferred) or ``$TOOLGYM_AUTH_TOKEN``; None = no auth.

    File format: one token per line (``#`` comments and blank lines ignored), either ``TOKEN``
    or ``NAME TOKEN``; the name is the client identity used by per-client limits and logs.
    """
    env = os.environ if environ is None else environ
    if path:
        try:
            st = os.stat(path)
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except OSError as e:
            raise SecurityConfigError(f"--auth-token-file {path!r}: {e.strerror}; point it at a file with one token per line") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("--auth-token-file %s is readable by group/others; chmod 600 it", path)
        pairs = []
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) > 2:
                raise SecurityConfigError(f"--auth-token-file {path}:{n}: expected 'TOKEN' or 'NAME TOKEN', got {len(parts)} fields")
            pairs.append((parts[0], parts[1]) if len(parts) == 2 else (f"token{len(pairs) + 1}", parts[0]))
        if not pairs:
            raise SecurityConfigError(f"--auth-token-file {path!r} holds no token; write one per line ({_TOKEN_HINT})")
        names = [p[0] for p in pairs]
        if len(set(names)) != len(names):
            raise SecurityConfigError(f"--auth-token-file {path!r}: token names must be unique")
        return _make_tokens(pairs, f"--auth-token-file {path}")
    value = env.get(TOKEN_ENV, "").strip()
    return _make_tokens([("token1", value)], f"${TOKEN_ENV}") if value else None


# ---------------------------------------------------------------------------- TLS
def _read(path: str, flag: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise SecurityConfigError(f"{flag} {path!r}: {e.strerror}") from None
    if b"-----BEGIN" not in data:
        raise SecurityConfigError(f"{flag} {path!r} is not PEM (no '-----BEGIN' line); pass a PEM-encoded file")
    return data


def server_credentials(cert: str, key: str, client_ca: str = "") -> grpc.ServerCredentials | None:
    """TLS credentials from PEM files; with ``client_ca`` clients must present a certificate it signed."""
    if not cert and not key:
        if client_ca:
            raise SecurityConfigError("--tls-client-ca needs --tls-cert and --tls-key (mTLS runs over TLS)")
        return None
    if not (cert and key):
        raise SecurityConfigError("TLS needs both --tls-cert (certificate chain, PEM) and --tls-key (its private key, PEM)")
    pair = (_read(key, "--tls-key"), _read(cert, "--tls-cert"))
    ca = _read(client_ca, "--tls-client-ca") if client_ca else None
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=ca is not None)


def is_loopback(host: str) -> bool:
    h = host.strip("[]").lower()
    return h == "localhost" or h == "::1" or h.startswith("127.")

