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


# each cap in the order `check` tries them, with the Counts field it compares
CAP_COUNTS = (
    ("ack_per_queue_minute", "acks_queue_minute"),
    ("auto_per_address_hour", "auto_hour"),
    ("auto_per_address_day", "auto_day"),
    ("notify_per_agent_ticket_hour", "notify_ticket_hour"),
    ("per_ticket_address_hour", "ticket_hour"),
)


@dataclass(frozen=True)
class Rule:
    """A cap that applies to a mail: its setting, the Counts field it compares, its limit."""

    cap: str
    count: str
    limit: int


def rules_for(mail: Mail, caps: GovernorSettings) -> tuple[Rule, ...]:
    """The caps that apply to `mail` (set, not 0), in the order `check` tries them."""
    key = (mail.kind, mail.ticket_id is not None, mail.budget, id(caps))
    known = _rules.get(key)
    if known is None or known[0] is not caps:  # a reloaded config: new settings, a new id
        if len(_rules) >= 256:
            _rules.clear()
        known = _rules[key] = (caps, _rules_for(mail, caps))
    return known[1]


# (kind, about a ticket, budget, id of the settings) -> (the settings, the rules): the same
# for every mail of a kind, worked out once per settings object
_rules: dict[tuple[str, bool, bool, int], tuple[GovernorSettings, tuple[Rule, ...]]] = {}


def _rules_for(mail: Mail, caps: GovernorSettings) -> tuple[Rule, ...]:
    if not caps.enabled:
        return ()
    auto = mail.kind in AUTOMATIC_KINDS
    applies = {
        "ack_per_queue_minute": mail.kind == "ack" and mail.budget,
        "auto_per_address_hour": auto,
        "auto_per_address_day": auto,
        "notify_per_agent_ticket_hour": is_notification(mail.kind),
        "per_ticket_address_hour": mail.ticket_id is not None,
    }
    return tuple(
        Rule(cap, count, getattr(caps, cap))
        for cap, count in CAP_COUNTS
        if applies[cap] and getattr(caps, cap)
    )


def check(mail: Mail, counts: Counts, caps: GovernorSettings) -> Verdict:
    """Hold `mail` if one more would pass a cap."""
    for rule in rules_for(mail, caps):
        n = getattr(counts, rule.count)
        if n >= rule.limit:
            return held(rule, n, mail)
    return PASS


def held(rule: Rule, n: int, mail: Mail) -> Verdict:
    """The verdict of a cap that holds `mail`, `n` mails counted in its window."""
    window = {MINUTE: "minute", HOUR: "hour", DAY: "day"}[WINDOWS[rule.cap]]
    about = _about(rule.cap, mail)
    reason = f"held by governor.{rule.cap} = {rule.limit} ({n} to {about} in the last {window})"
    return Verdict(True, rule.cap, reason)


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
