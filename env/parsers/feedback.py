"""What the model is told when its output does not parse (``on_parse_error="observe"``).

One plain-text block, the same in every template: the parser, where (line/column and the
fragment it choked on) and what was expected, so the model can correct itself on the next
step. Bounded: at most :data:`MAX_SHOWN` issues, fragments cut to :data:`MAX_FRAGMENT` characters.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolgym.env.textsafe import clean_text
from toolgym.env.types import ParseIssue

MAX_SHOWN = 5
MAX_FRAGMENT = 200


def _fragment(s: str) -> str:
    s = clean_text(s).strip()
    return s if len(s) <= MAX_FRAGMENT else s[: MAX_FRAGMENT - 3] + "..."


def render_parse_errors(issues: Sequence[ParseIssue], template: str, *, ran: int = 0) -> str:
    """The error observation for ``issues`` (empty string when there are none). ``ran``: how
    many well-formed calls of the same output were executed (their results come alongside)."""
    if not issues:
        return ""
    lines = [f"Format error: your last output did not parse under the {template} format "
             f"({len(issues)} problem{'s' if len(issues) != 1 else ''})."]
    for i in issues[:MAX_SHOWN]:
        where = f" at line {i.line}, column {i.column}" if i.line >= 0 else ""
        lines.append(f"- [{i.template} parser] {i.kind}{where}: {clean_text(i.message)}")
        if i.fragment:
            lines.append(f"  fragment: {_fragment(i.fragment)}")
    if len(issues) > MAX_SHOWN:
        lines.append(f"- ... and {len(issues) - MAX_SHOWN} more")
    lines.append(f"{ran} well-formed call{'s' if ran != 1 else ''} of that output ran; the malformed part did not. "
                 "Fix it and reply again.")
    return "\n".join(lines)
