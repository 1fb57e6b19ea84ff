"""outgoing/governor.check: each cap holds at its limit, names itself, and 0 switches it off."""

from __future__ import annotations

import pytest

from mailgate.config.governor import GovernorSettings
from mailgate.outgoing.governor import Mail, Sent, check

CAPS = GovernorSettings(
    auto_per_address_hour=3,
    auto_per_address_day=5,
    per_ticket_address_hour=4,
    notify_per_agent_ticket_hour=2,
    ack_per_queue_minute=10,
)


def _sent(kind: str, n: int, ticket: int | None = 1, age: float = 60) -> list[Sent]:
    return [Sent(kind, ticket, age) for _ in range(n)]


@pytest.mark.parametrize(
    ("mail", "history", "acks", "cap"),
    [
        (Mail("ack", "c@x.example", 9), _sent("ack", 3, ticket=2), 0, "auto_per_address_hour"),
        (
            Mail("closed", "c@x.example", 9),
            _sent("ack", 5, ticket=2, age=7200),
            0,
            "auto_per_address_day",
        ),
        (Mail("answer", "c@x.example", 1), _sent("answer", 4), 0, "per_ticket_address_hour"),
        (
            Mail("notify-customer_reply", "alice@example.test", 1),
            _sent("notify-new_ticket", 2),
            0,
            "notify_per_agent_ticket_hour",
        ),
        (Mail("ack", "new@x.example", 7, "support"), [], 10, "ack_per_queue_minute"),
    ],
)
def test_each_cap_holds_at_its_limit_and_not_below(mail, history, acks, cap):
    v = check(mail, history, acks, CAPS)
    assert v.hold and v.cap == cap and f"governor.{cap}" in v.reason
    below = check(mail, history[:-1], max(0, acks - 1), CAPS)
    assert not below.hold, below
    off = check(mail, history, acks, CAPS.model_copy(update={cap: 0}))
    assert off.cap != cap
    assert not check(mail, history, acks, CAPS.model_copy(update={"enabled": False})).hold


def test_windows_and_scopes():
    # an hour-old auto mail no longer counts for the hour, still for the day
    old = _sent("ack", 3, ticket=2, age=3601)
    assert not check(Mail("ack", "c@x.example", 9), old, 0, CAPS).hold
    # answers on another ticket do not count against this ticket
    other = _sent("answer", 4, ticket=2)
    assert not check(Mail("answer", "c@x.example", 1), other, 0, CAPS).hold
    # an answer is not automatic mail: the automatic caps leave it alone
    autos = _sent("ack", 3, ticket=2)
    assert not check(Mail("answer", "c@x.example", 1), autos, 0, CAPS).hold
