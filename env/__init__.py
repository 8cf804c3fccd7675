"""toolgym.env: the tool-use environment, its tasks, parsers, sandbox, reward engine and server.

Importing this package (or plain ``import toolgym``) registers ``toolgym/ToolUse-v0`` with Gymnasium::

    import gymnasium as gym
    import toolgym.env  # noqa: F401  (registers the env)

    env = gym.make("toolgym/ToolUse-v0", categories=["simple_python"])            # in-process
    env = gym.make("toolgym/ToolUse-v0", server="127.0.0.1:50051")               # remote
"""

from __future__ import annotations

from toolgym import ENV_ID, __version__  # registering happens in the toolgym package itself

__all__ = ["ENV_ID", "__version__"]
