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


def has_report_part(raw: bytes) -> bool:
    return _REPORT_PART.search(raw) is not None
