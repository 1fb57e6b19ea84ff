"""Whether a message carries a report part anywhere (a DSN, an MDN, an ARF report).  Pure.

Read on the raw bytes, so a report nested in a forward or a DSN look-alike that says
Auto-Submitted: no is still looked at (pipeline/machine_mail.handle_report).
"""

from __future__ import annotations

import re

_FIELD = b"content-type:"
# what follows a Content-Type field's colon in a report part (on the lowered bytes)
_REPORT_TYPE = re.compile(
    rb"\s*(multipart/report|message/(global-)?delivery-status"
    rb"|message/disposition-notification|message/feedback-report)"
)


def has_report_part(raw: bytes) -> bool:
    """A Content-Type field (any case) naming a report type: each field found in the
    lowered bytes, its value matched there (a case-blind regex search over the whole
    message cost four times as much; lower() folds ASCII only, as IGNORECASE on bytes)."""
    lowered = raw.lower()
    pos = lowered.find(_FIELD)
    while pos >= 0:
        if _REPORT_TYPE.match(lowered, pos + len(_FIELD)):
            return True
        pos = lowered.find(_FIELD, pos + len(_FIELD))
    return False
