"""Which ticket a message belongs to, given facts looked up beforehand. Pure.

Order: the subject tag (`[support #123]`), then In-Reply-To/References against every
Message-ID we stored or sent. A follow-up joins a ticket only when it comes from the
requester, a CC or an agent; otherwise it opens a new ticket linked to the one it named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

TAG_RE = re.compile(r"\[(?:[A-Za-z0-9_-]{1,40} )?#(\d{1,12})\]")


@dataclass(frozen=True)
class TicketFacts:
    id: int
    requester: str
    ccs: frozenset[str]
    status: str
    queue: str
    closed_at: datetime | None


@dataclass(frozen=True)
class ThreadLookups:
    tagged: TicketFacts | None  # the ticket the subject tag names, if it exists
    referenced: tuple[
        TicketFacts, ...
    ]  # tickets found through In-Reply-To/References, nearest first


@dataclass(frozen=True)
class ThreadChoice:
    ticket_id: int | None  # None: open a new ticket
    reason: str
    linked_to: int | None = None  # the ticket a new one was split from
    reopen: bool = False


def tag_number(subject: str) -> int | None:
    m = TAG_RE.search(subject)
    return int(m.group(1)) if m else None


def referenced_ids(in_reply_to: tuple[str, ...], references: tuple[str, ...]) -> tuple[str, ...]:
    """Message-IDs to look up, the nearest ancestor first."""
    seen: dict[str, None] = {}
    for mid in (*in_reply_to, *reversed(references)):
        if mid:
            seen.setdefault(mid, None)
    return tuple(seen)


def _may_follow_up(t: TicketFacts, sender: str, agents: frozenset[str]) -> bool:
    return sender == t.requester or sender in t.ccs or sender in agents


def choose(
    sender: str,
    lookups: ThreadLookups,
    agents: frozenset[str],
    now: datetime,
    reopen_window: timedelta | None,
) -> ThreadChoice:
    candidates: list[tuple[TicketFacts, str]] = []
    if lookups.tagged is not None:
        candidates.append((lookups.tagged, "subject tag"))
    candidates += [(t, "references") for t in lookups.referenced]
    if not candidates:
        return ThreadChoice(None, "no tag or known reference: new ticket")
    for t, how in candidates:
        if not _may_follow_up(t, sender, agents):
            continue
        if t.status == "closed":
            too_late = (
                reopen_window is not None
                and t.closed_at is not None
                and now - t.closed_at > reopen_window
            )
            if too_late:
                return ThreadChoice(
                    None,
                    f"#{t.id} closed longer than the reopen window: new ticket",
                    linked_to=t.id,
                )
            return ThreadChoice(t.id, f"follow-up by {how} to closed #{t.id}: reopen", reopen=True)
        return ThreadChoice(t.id, f"follow-up by {how} to #{t.id}")
    first = candidates[0][0]
    return ThreadChoice(
        None,
        f"{sender or 'unknown sender'} is not the requester, a CC or an agent of #{first.id}: "
        "new ticket",
        linked_to=first.id,
    )
