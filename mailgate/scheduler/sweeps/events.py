"""What a sweep found, as the mails about it need it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Escalation:
    """One ticket that used up a target in this sweep."""

    ticket_id: int
    from_tier: str
    to_tier: str  # the same as from_tier when the top tier used its budget
    cause: str  # first_response | resolution | tier
    key: str  # what makes this escalation unique for the ticket (Message-IDs)
    reason: str
