"""toolgym.env: the tool-use environment, its tasks, parsers, sandbox, reward engine and server.

Importing this package registers ``toolgym/ToolUse-v0`` with Gymnasium::

    import gymnasium as gym
    import toolgym.env  # noqa: F401  (registers the env)

    env = gym.make("toolgym/ToolUse-v0", categories=["simple_python"])            # in-process
    env = gym.make("toolgym/ToolUse-v0", server="127.0.0.1:50051")               # remote
"""

from __future__ import annotations

__version__ = "0.1.0"

ENV_ID = "toolgym/ToolUse-v0"


def _register() -> None:
    # Lazy entry point: registering costs only gymnasium's import; the env module (and the
    # task suite) load when an env is made.
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="toolgym.env.gym_env:make_env", disable_env_checker=False)


_register()
