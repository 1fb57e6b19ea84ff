"""Which of our messages a bounce or report is about: VERP first, then the Message-ID in the
returned headers, then the original recipient and time. Pure given the lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Sent:
    """One of our outbox rows, as the matcher needs it."""

    row_id: int
    ticket_id: int | None
    kind: str
    message_id: str
    rcpt_tos: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class Lookups:
    """What the store found for one report (store/bounce_lookups.py)."""

    verp: Sent | None = None  # the row a VERP recipient with a valid MAC names
    verp_forged: str = ""  # a VERP-shaped recipient whose MAC did not match
    by_message_id: Sent | None = None  # our row whose Message-ID the report returns
    ticket_by_message_id: int | None = None  # a ticket that knows the id (a thread ref)
    by_recipient: Sent | None = None  # our last mail to a reported recipient in the window


@dataclass(frozen=True)
class Match:
    ticket_id: int | None
    method: str  # "verp" | "message-id" | "recipient" | "" (nothing)
    sent: Sent | None
    reason: str

    @property
    def matched(self) -> bool:
        return self.ticket_id is not None


def match(found: Lookups) -> Match:
    if found.verp is not None and found.verp.ticket_id is not None:
        s = found.verp
        return Match(s.ticket_id, "verp", s, f"VERP address of outbox row {s.row_id}")
    if found.by_message_id is not None and found.by_message_id.ticket_id is not None:
        s = found.by_message_id
        return Match(s.ticket_id, "message-id", s, f"returned Message-ID {s.message_id}")
    if found.ticket_by_message_id is not None:
        return Match(found.ticket_by_message_id, "message-id", None, "returned Message-ID")
    if found.by_recipient is not None and found.by_recipient.ticket_id is not None:
        s = found.by_recipient
        return Match(
            s.ticket_id, "recipient", s, f"last mail to {', '.join(s.rcpt_tos)} ({s.message_id})"
        )
    why = "matches none of our messages (no VERP address, known Message-ID or recent recipient)"
    if found.verp_forged:
        why = f"VERP address {found.verp_forged} with a wrong MAC; " + why
    elif found.verp is not None:
        why = f"VERP row {found.verp.row_id} has no ticket; " + why
    return Match(None, "", found.verp, why)
