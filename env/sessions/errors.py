"""What can go wrong in the session layer, as types each protocol adapter maps to its own codes.

gRPC maps them in ``toolgym.env.server.env_service``; the HTTP gateway maps the same types to
OpenEnv's error codes. Every message says what happened and what the caller can do about it.
"""

from __future__ import annotations


class SessionLimitError(Exception):
    """A cap (--max-sessions, --max-sessions-per-client) is reached; nothing was opened."""


class SessionNotFound(KeyError):
    """No open session with that id (closed, expired, never existed, or another replica's)."""


class StepIndexError(IndexError):
    """A step_index that is neither the next step nor a faithful retry of an applied one."""


class EpisodeOver(Exception):
    """A new step for an episode that has terminated or been truncated."""


class StoreUnavailable(Exception):
    """The session store cannot be read or written (down, unreachable, full). Nothing was
    applied, or what was applied was discarded: retrying with the same step_index is safe."""


class SessionBusy(StoreUnavailable):
    """Another replica holds the session's lease longer than this replica will wait."""


class RestoreMismatch(Exception):
    """Replaying a stored session's action log did not reproduce its recorded observations:
    the session cannot be continued faithfully, so it is refused rather than diverging."""


class StoreConfigError(ValueError):
    """The store named by --session-store cannot be opened (bad URL, corrupt or locked file,
    unreachable server). A ValueError: ``toolgym serve`` prints it as one line and exits 2."""
