"""Which ticket a message belongs to, given facts looked up beforehand. Pure.

Order: the subject tag (`[support #123]`), then In-Reply-To/References against every
Message-ID we stored or sent. A follow-up joins a ticket only when it comes from the
requester, a CC or an agent; otherwise it opens a new ticket linked to the one it named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailgate.parse.message import Parsed

TAG_RE = re.compile(r"\[(?:[A-Za-z0-9_-]{1,40} )?#(\d{1,12})\]")
# where anyone can get an address: a shared domain says nothing about who the sender is
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "ymail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "gmx.de",
        "gmx.net",
        "gmx.com",
        "web.de",
        "t-online.de",
        "proton.me",
        "protonmail.com",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
        "zoho.com",
        "fastmail.com",
        "mail.com",
        "posteo.de",
        "mailbox.org",
        "tutanota.com",
        "hey.com",
    }
)


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
    new_cc: str = ""  # a colleague of the requester who joined the conversation


def tag_number(subject: str) -> int | None:
    m = TAG_RE.search(subject)
    return int(m.group(1)) if m else None


def named_tickets(tag: int | None, refs: Iterable[str], ticket_of: Mapping[str, int]) -> list[int]:
    """The tickets a message names: its subject tag's (`tag_number`), then its references'
    (those `ticket_of` knows the ticket of), nearest first."""
    return ([tag] if tag else []) + [ticket_of[m] for m in refs if m in ticket_of]


def referenced_ids(in_reply_to: tuple[str, ...], references: tuple[str, ...]) -> tuple[str, ...]:
    """Message-IDs to look up, the nearest ancestor first."""
    seen: dict[str, None] = {}
    for mid in (*in_reply_to, *reversed(references)):
        if mid:
            seen.setdefault(mid, None)
    return tuple(seen)


def message_refs(p: Parsed) -> list[str]:
    """The Message-IDs a message is threaded by (at most 100), its own first: a known id
    re-sent with other content joins that ticket."""
    return list(referenced_ids((p.message_id, *p.in_reply_to), p.references)[:100])


def same_organisation(sender: str, requester: str) -> bool:
    """Both addresses at one company domain (never a public mail provider's)."""
    sd, rd = sender.rpartition("@")[2], requester.rpartition("@")[2]
    return bool(sd) and sd == rd and sd not in PUBLIC_MAIL_DOMAINS


def _may_follow_up(t: TicketFacts, sender: str, agents: frozenset[str], colleagues: bool) -> str:
    """How the sender may add to the ticket: "member", "colleague" or "" (may not)."""
    if sender == t.requester or sender in t.ccs or sender in agents:
        return "member"
    if colleagues and same_organisation(sender, t.requester):
        return "colleague"
    return ""


def choose(
    sender: str,
    lookups: ThreadLookups,
    agents: frozenset[str],
    now: datetime,
    reopen_window: timedelta | None,
    colleagues: bool = True,
) -> ThreadChoice:
    candidates: list[tuple[TicketFacts, str]] = []
    if lookups.tagged is not None:
        candidates.append((lookups.tagged, "subject tag"))
    candidates += [(t, "references") for t in lookups.referenced]
    if not candidates:
        return ThreadChoice(None, "no tag or known reference: new ticket")
    for t, how in candidates:
        standing = _may_follow_up(t, sender, agents, colleagues)
        if not standing:
            continue
        new_cc = sender if standing == "colleague" else ""
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
            return ThreadChoice(
                t.id, f"follow-up by {how} to closed #{t.id}: reopen", reopen=True, new_cc=new_cc
            )
        if new_cc:
            return ThreadChoice(
                t.id,
                f"follow-up by {how} to #{t.id} from the requester's colleague",
                new_cc=new_cc,
            )
        return ThreadChoice(t.id, f"follow-up by {how} to #{t.id}")
    first = candidates[0][0]
    return ThreadChoice(
        None,
        f"{sender or 'unknown sender'} is not the requester, a CC, a colleague or an agent of "
        f"#{first.id}: new ticket",
        linked_to=first.id,
    )
