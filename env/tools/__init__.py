"""Tools served to agents: the :class:`Toolset` protocol, the static registry of toolset
kinds and the toolsets themselves. Toolsets run only inside sandbox workers
(:mod:`toolgym.env.sandbox`)."""

from toolgym.env.tools.registry import KINDS, Toolset, ToolError, create, known_kinds, register, resolve

__all__ = ["KINDS", "Toolset", "ToolError", "create", "known_kinds", "register", "resolve"]
