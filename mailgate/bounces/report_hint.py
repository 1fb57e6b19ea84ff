"""Whether a message carries a report part anywhere (a DSN, an MDN, an ARF report).  Pure.

Read on the raw bytes, so a report nested in a forward or a DSN look-alike that says
Auto-Submitted: no is still looked at (pipeline/machine_mail.handle_report).
"""

from __future__ import annotations

import re

_REPORT_PART = re.compile(
    rb"content-type:\s*(multipart/report|message/(global-)?delivery-status"
    rb"|message/disposition-notification|message/feedback-report)",
    re.IGNORECASE,
)
# one of them is in every match: looked for first in the lowered bytes (a case-blind
# regex over the whole message costs twice as much, and nearly no mail has one)
_REPORT_TYPES = (
    b"multipart/report",
    b"delivery-status",
    b"disposition-notification",
    b"feedback-report",
)


def has_report_part(raw: bytes) -> bool:
    lowered = raw.lower()  # (ASCII only, as the regex's IGNORECASE on bytes)
    if not any(name in lowered for name in _REPORT_TYPES):
        return False
    return _REPORT_PART.search(raw) is not None
