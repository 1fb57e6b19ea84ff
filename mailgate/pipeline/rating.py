"""Is a customer's mail the answer to a satisfaction survey? Pure.

The survey asks for a number 1-5 as the first thing in the reply; its mailto links carry
the same number in the subject (`Rating 4 [support #12]`) and the body. The text after the
number, up to the quoted survey, is the comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SUBJECT = re.compile(r"\brating\s*[:=]?\s*([1-5])\b", re.IGNORECASE)
# "4", "4/5", "4 of 5", "4 stars", "4!" alone on the first line, or "4 - comment" / "4: comment"
# ("1. The problem is back" is a numbered list, not a rating)
_FIRST_LINE = re.compile(
    r"^\s*([1-5])\s*(?:/\s*5|of\s+5|stars?|\*+)?\s*(?:[.!]?\s*$|[:\-–—]\s+(.*)$)",
    re.IGNORECASE,
)
_QUOTE_START = re.compile(
    r"^\s*(>|on .{0,200} wrote:|am .{0,200} schrieb|le .{0,200} a écrit|-----\s*original)",
    re.IGNORECASE,
)
COMMENT_MAX = 2000


@dataclass(frozen=True)
class Rating:
    score: int  # 1..5
    comment: str


def _own_lines(text: str) -> list[str]:
    """The reply's own lines: up to the quoted survey or the signature separator."""
    out: list[str] = []
    for line in text.splitlines():
        if _QUOTE_START.match(line) or line.rstrip() == "--":
            break
        out.append(line.rstrip())
    return out


def read_rating(subject: str, text: str) -> Rating | None:
    """The rating the mail gives, or None when it is not a survey answer."""
    lines = _own_lines(text)
    while lines and not lines[0].strip():
        lines.pop(0)
    first = _FIRST_LINE.match(lines[0]) if lines else None
    if first:
        score = int(first.group(1))
        rest = [first.group(2) or "", *lines[1:]]
    else:
        by_subject = _SUBJECT.search(subject)
        if not by_subject:
            return None
        score = int(by_subject.group(1))
        rest = lines
    comment = "\n".join(rest).strip()
    return Rating(score, comment[:COMMENT_MAX])
