"""An honest text space: any Python ``str`` within the length bounds.

gymnasium's :class:`~gymnasium.spaces.Text` only contains strings drawn from its charset, but
model outputs and tool results can hold any Unicode character. Subclassing ``Text`` (rather
than a bare ``Space``) keeps gymnasium's vector-env batching and concatenation working.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

# Characters used only for sampling: ASCII, JSON/markup punctuation, some CJK and symbols,
# so random actions exercise the parsers the way real (and hostile) outputs do.
_SAMPLE_CHARS = string.printable + "<>{}[]\"':,|中文工具调用éßΩ✓🙂"


class UnicodeText(spaces.Text):
    """All strings of length ``min_length..max_length`` (any Unicode code points)."""

    def __init__(self, max_length: int, *, min_length: int = 0, sample_max_length: int = 256, seed: int | np.random.Generator | None = None):
        super().__init__(max_length=max_length, min_length=min_length, charset=_SAMPLE_CHARS, seed=seed)
        self.sample_max_length = min(sample_max_length, max_length)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        n = int(self.np_random.integers(self.min_length, self.sample_max_length + 1))
        idx = self.np_random.integers(0, len(_SAMPLE_CHARS), size=n)
        return "".join(_SAMPLE_CHARS[i] for i in idx)

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"
