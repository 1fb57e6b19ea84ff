"""The governor: whether one more mail to one address goes out now or is held.  Pure.

The store counts what was already queued (held and dropped mail does not count) and this
module compares with the caps of `[governor]` (config/governor.py). The first cap that
holds names itself in the verdict; the row is kept with that reason (`status = held`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.config.governor import GovernorSettings

# automatic mail a loop, a storm or a forged sender would make us send
AUTOMATIC_KINDS = frozenset({"ack", "closed", "escalated"})


def is_notification(kind: str) -> bool:
    return kind.startswith("notify-")


@dataclass(frozen=True)
class Sent:
    """One mail already queued to the address: what it was, about which ticket, how old."""

    kind: str
    ticket_id: int | None
    age_seconds: float


@dataclass(frozen=True)
class Mail:
    kind: str
    address: str
    ticket_id: int | None
    queue: str = ""


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


def check(
    mail: Mail, to_address: list[Sent], acks_in_queue_last_minute: int, caps: GovernorSettings
) -> Verdict:
    """Hold `mail` if one more would pass a cap; `to_address`: the address's last day."""
    if not caps.enabled:
        return PASS
    auto = mail.kind in AUTOMATIC_KINDS
    autos = [s for s in to_address if s.kind in AUTOMATIC_KINDS]
    on_ticket = mail.ticket_id is not None
    same_ticket = [
        s
        for s in to_address
        if on_ticket and s.ticket_id == mail.ticket_id and s.age_seconds < HOUR
    ]
    about_ticket = f"{mail.address} on ticket #{mail.ticket_id}"
    rules = (
        (
            "ack_per_queue_minute",
            mail.kind == "ack",
            acks_in_queue_last_minute,
            f"queue {mail.queue}",
        ),
        ("auto_per_address_hour", auto, sum(s.age_seconds < HOUR for s in autos), mail.address),
        ("auto_per_address_day", auto, sum(s.age_seconds < DAY for s in autos), mail.address),
        (
            "notify_per_agent_ticket_hour",
            is_notification(mail.kind),
            sum(is_notification(s.kind) for s in same_ticket),
            about_ticket,
        ),
        ("per_ticket_address_hour", on_ticket, len(same_ticket), about_ticket),
    )
    for cap, applies, n, about in rules:
        limit = getattr(caps, cap)
        if applies and limit and n >= limit:
            window = {MINUTE: "minute", HOUR: "hour", DAY: "day"}[WINDOWS[cap]]
            return Verdict(
                True, cap, f"held by governor.{cap} = {limit} ({n} to {about} in the last {window})"
            )
    return PASS
