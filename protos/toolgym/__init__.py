"""toolgym: a tool-use RL environment and reward server for LLM agents.

``import toolgym`` registers ``toolgym/ToolUse-v0`` with Gymnasium, the way Gymnasium 1.x's own
plugins do (``import ale_py; gym.register_envs(ale_py)``): Gymnasium 1.x dropped entry-point
plugins, so an importable top package is what its users reach for first::

    import gymnasium as gym
    import toolgym

    gym.register_envs(toolgym)  # a no-op that keeps linters from removing the import
    env = gym.make("toolgym/ToolUse-v0", categories=["simple_python"])            # in-process
    env = gym.make("toolgym/ToolUse-v0", server="127.0.0.1:50051")               # remote

``gym.make("toolgym:toolgym/ToolUse-v0")`` works with no import at all. Any ``toolgym.*``
import runs this file first, so ``import toolgym.env`` (the older spelling) registers too.

This file lives in ``protos/toolgym/`` because that folder already is the ``toolgym`` package
root of the generated ``toolgym.v1`` code; the other sub-packages map in from ``env/``,
``trainer/`` and ``evals/`` (see setup.py).
"""

from __future__ import annotations

__version__ = "0.1.0"

#: The Gymnasium id of the environment.
ENV_ID = "toolgym/ToolUse-v0"


def _register() -> None:
    # Lazy entry point: registering costs only gymnasium's import; the env module (and the
    # task suite) load when an env is made.
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="toolgym.env.gym_env:make_env", disable_env_checker=False)


_register()
