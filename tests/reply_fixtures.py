"""The reply-parsing fixture sets of github/email_reply_parser, zapier/email-reply-parser
and mailgun/talon (tests/data/reply_fixtures/, licenses in LICENSES.md there), and how to
score an answer against one case: clean = every line the author wrote and nothing else
(signature lines may go either way); leak = a line nobody expects (quoted text, a quote
header); lost = an expected line missing."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

CASES_FILE = Path(__file__).parent / "data" / "reply_fixtures" / "cases.json"
SETS = ("github-erp", "zapier-erp", "talon-standard", "talon-inline")


@dataclass(frozen=True)
class Case:
    set: str
    name: str
    text: str
    exp: str
    sig: tuple[str, ...]


def load_cases() -> list[Case]:
    raw = json.loads(CASES_FILE.read_text(encoding="utf-8"))
    return [Case(c["set"], c["name"], c["text"], c["exp"], tuple(c["sig"])) for c in raw]


def _lines(text: str) -> list[str]:
    return [s for s in (re.sub(r"\s+", " ", line).strip() for line in text.splitlines()) if s]


def score(case: Case, answer: str) -> str:
    """'clean', 'leak' or 'lost' ('leak' wins when both)."""
    got = Counter(_lines(answer))
    want = Counter(_lines(case.exp))
    sig = {s for line in case.sig for s in _lines(line)}
    extra = [line for line in got - want if line not in sig]
    if extra:
        return "leak"
    if want - got:
        return "lost"
    return "clean"


def tally(results: list[tuple[Case, str]]) -> dict[str, Counter]:
    """Per set (and 'all'): how many cases were clean, leaked, lost."""
    out: dict[str, Counter] = {s: Counter() for s in (*SETS, "all")}
    for case, verdict in results:
        out[case.set][verdict] += 1
        out["all"][verdict] += 1
    return out
