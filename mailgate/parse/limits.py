"""Bounds on the parse work for one message, and the one way parsing refuses bytes."""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEADER_LINES = 10_000  # a header block longer than this is cut (raw kept)
MAX_HEADER_CHARS = 65_536  # one header value longer than this is truncated
MIN_LINE_CAP = 500_000  # the stdlib costs ~2 us per line: cap the lines it sees
MAX_DEFECTS = 200  # defects kept per message; the rest are counted


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on the work done for one message."""

    max_bytes: int = 25 * 1024 * 1024
    max_parts: int = 200
    max_depth: int = 10
    max_text_chars: int = 1_000_000


class ParseRejected(Exception):
    """The bytes cannot be treated as mail at all; `reason` says why (goes to the shunt)."""

    def __init__(self, reason: str):
        """Keep the reason, also as the exception message."""
        super().__init__(reason)
        self.reason = reason
