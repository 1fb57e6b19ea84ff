"""Whether to send an auto-response (RFC 3834 and the per-sender period). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailgate.pipeline.classify import Verdict


@dataclass(frozen=True)
class ResponseDecision:
    send: bool
    reason: str


def should_respond(
    *,
    verdict: Verdict,
    sender: str,
    enabled: bool,
    period: timedelta,
    last_sent_at: datetime | None,
    now: datetime,
) -> ResponseDecision:
    if not enabled:
        return ResponseDecision(False, "auto-response disabled for the queue")
    if not verdict.may_autorespond:
        return ResponseDecision(False, "automatic mail: " + "; ".join(verdict.reasons))
    if not sender or "@" not in sender:
        return ResponseDecision(False, "no usable sender address")
    if last_sent_at is not None and now - last_sent_at < period:
        return ResponseDecision(
            False, f"{sender} already got an auto-response at {last_sent_at.isoformat()}"
        )
    return ResponseDecision(True, "new ticket acknowledgement")
