"""The governor: whether one more mail to one address goes out now or is held.  Pure.

The store counts what was already queued (held and dropped mail does not count) and this
module compares with the caps of `[governor]` (config/governor.py). The first cap that
holds names itself in the verdict; the row is kept with that reason (`status = held`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailgate.config.governor import GovernorSettings

# automatic mail a loop, a storm or a forged sender would make us send
AUTOMATIC_KINDS = frozenset({"ack", "closed", "escalated", "survey"})


def is_notification(kind: str) -> bool:
    return kind.startswith("notify-")


@dataclass(frozen=True)
class Counts:
    """What the store counted for one recipient (only what the mail's caps need)."""

    auto_hour: int = 0  # automatic mails to the address in the last hour
    auto_day: int = 0
    ticket_hour: int = 0  # mails of any kind to the address about this ticket, last hour
    notify_ticket_hour: int = 0  # of those, notifications
    acks_queue_minute: int = 0  # acknowledgements the queue sent in the last minute


@dataclass(frozen=True)
class Mail:
    kind: str
    address: str
    ticket_id: int | None
    queue: str = ""
    budget: bool = True  # counts against the queue's ack budget (False: an authenticated sender)


@dataclass(frozen=True)
class Verdict:
    hold: bool
    cap: str = ""  # the setting that held it
    reason: str = ""

    @property
    def window_seconds(self) -> int:
        return WINDOWS.get(self.cap, 3600)


PASS = Verdict(False)
HOUR, DAY, MINUTE = 3600, 86400, 60
WINDOWS = {
    "auto_per_address_hour": HOUR,
    "auto_per_address_day": DAY,
    "per_ticket_address_hour": HOUR,
    "notify_per_agent_ticket_hour": HOUR,
    "ack_per_queue_minute": MINUTE,
}


def check(mail: Mail, counts: Counts, caps: GovernorSettings) -> Verdict:
    """Hold `mail` if one more would pass a cap."""
    if not caps.enabled:
        return PASS
    auto = mail.kind in AUTOMATIC_KINDS
    rules = (
        ("ack_per_queue_minute", mail.kind == "ack" and mail.budget, counts.acks_queue_minute),
        ("auto_per_address_hour", auto, counts.auto_hour),
        ("auto_per_address_day", auto, counts.auto_day),
        ("notify_per_agent_ticket_hour", is_notification(mail.kind), counts.notify_ticket_hour),
        ("per_ticket_address_hour", mail.ticket_id is not None, counts.ticket_hour),
    )
    for cap, applies, n in rules:
        limit = getattr(caps, cap) if applies else 0
        if limit and n >= limit:
            window = {MINUTE: "minute", HOUR: "hour", DAY: "day"}[WINDOWS[cap]]
            about = _about(cap, mail)
            return Verdict(
                True, cap, f"held by governor.{cap} = {limit} ({n} to {about} in the last {window})"
            )
    return PASS


def _about(cap: str, mail: Mail) -> str:
    """Whom a cap counts mail to, as the held row's reason names it."""
    if cap == "ack_per_queue_minute":
        return f"queue {mail.queue}"
    if cap.startswith("auto_"):
        return mail.address
    return f"{mail.address} on ticket #{mail.ticket_id}"


def paused(mail: Mail, until: datetime | None, now: datetime) -> Verdict:
    """Hold automatic mail to an address that bounced, until its pause ends (store/addresses)."""
    if mail.kind not in AUTOMATIC_KINDS or until is None or until <= now:
        return PASS
    return Verdict(
        True,
        "bounce_pause",
        f"held: {mail.address} bounced; automatic mail to it paused until "
        f"{until:%Y-%m-%d %H:%M} UTC (mailgate addresses clear {mail.address})",
    )
