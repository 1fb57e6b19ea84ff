"""Whether to send an auto-response (RFC 3834 and the per-sender period). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailgate.parse.message import Parsed
from mailgate.pipeline.classify import Verdict

_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw|rif|r)\s*(\[\d+\])?\s*:", re.IGNORECASE)


# senders that never read a reply (RFC 3834 section 2: do not respond to them)
NO_REPLY_LOCALS = frozenset(
    {"noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply"}
    | {"mailer-daemon", "postmaster", "bounce", "bounces"}
)


def no_reply_sender(address: str) -> str | None:
    """Why `address` is one nobody reads replies to, or None."""
    local = address.split("@", 1)[0].lower()
    base = local.split("+", 1)[0]
    if base in NO_REPLY_LOCALS:
        return f"{address} is a no-reply address"
    if base.startswith(("bounce-", "bounces-", "bounce.", "noreply-", "no-reply-")):
        return f"{address} is a bounce or no-reply address"
    return None


def looks_like_reply(p: Parsed) -> bool:
    """A reply to some other mail (threading headers or a reply prefix on the subject)."""
    return bool(p.in_reply_to or p.references or _REPLY_PREFIX.match(p.subject or ""))


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
    reply: bool = False,
) -> ResponseDecision:
    """Acknowledge a new ticket? Every new ticket from a person is acknowledged (the
    governor caps how many per address); the once-per-period rule guards only mail that
    looks automatic though it says nothing: a reply (`reply`: In-Reply-To, References or
    a "Re:" subject) that starts a ticket, as a responder's answer to other mail does."""
    if not enabled:
        return ResponseDecision(False, "auto-response disabled for the queue")
    if not verdict.may_autorespond:
        return ResponseDecision(False, "automatic mail: " + "; ".join(verdict.reasons))
    if not sender or "@" not in sender:
        return ResponseDecision(False, "no usable sender address")
    why_not = no_reply_sender(sender)
    if why_not:
        return ResponseDecision(False, why_not)
    if reply and last_sent_at is not None and now - last_sent_at < period:
        return ResponseDecision(
            False, f"{sender} already got an auto-response at {last_sent_at.isoformat()}"
        )
    return ResponseDecision(True, "new ticket acknowledgement")
