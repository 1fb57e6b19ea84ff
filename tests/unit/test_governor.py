"""outgoing/governor.check: each cap holds at its limit, names itself, and 0 switches it off."""

from __future__ import annotations

import pytest

from mailgate.config.governor import GovernorSettings
from mailgate.outgoing.governor import Counts, Mail, check

CAPS = GovernorSettings(
    auto_per_address_hour=3,
    auto_per_address_day=5,
    per_ticket_address_hour=4,
    notify_per_agent_ticket_hour=2,
    ack_per_queue_minute=10,
)


@pytest.mark.parametrize(
    ("mail", "field", "cap"),
    [
        (Mail("ack", "c@x.example", 9), "auto_hour", "auto_per_address_hour"),
        (Mail("closed", "c@x.example", 9), "auto_day", "auto_per_address_day"),
        (Mail("answer", "c@x.example", 1), "ticket_hour", "per_ticket_address_hour"),
        (
            Mail("notify-customer_reply", "alice@example.test", 1),
            "notify_ticket_hour",
            "notify_per_agent_ticket_hour",
        ),
        (Mail("ack", "new@x.example", 7, "support"), "acks_queue_minute", "ack_per_queue_minute"),
    ],
)
def test_each_cap_holds_at_its_limit_and_not_below(mail, field, cap):
    limit = getattr(CAPS, cap)
    v = check(mail, Counts(**{field: limit}), CAPS)
    assert v.hold and v.cap == cap and f"governor.{cap} = {limit}" in v.reason
    assert not check(mail, Counts(**{field: limit - 1}), CAPS).hold
    assert not check(mail, Counts(**{field: limit}), CAPS.model_copy(update={cap: 0})).hold
    off = CAPS.model_copy(update={"enabled": False})
    assert not check(mail, Counts(**{field: limit}), off).hold


def test_caps_apply_to_their_kinds_only():
    many = Counts(auto_hour=99, auto_day=99, notify_ticket_hour=99, acks_queue_minute=99)
    # an answer is not automatic mail and no notification: only the per-ticket cap counts
    assert not check(Mail("answer", "c@x.example", 1), many, CAPS).hold
    # mail about no ticket is not held by the per-ticket cap
    assert not check(Mail("agent-result", "a@x.example", None), Counts(ticket_hour=99), CAPS).hold


@pytest.mark.parametrize(
    ("mail", "counts", "reason"),
    [
        (
            Mail("ack", "new@x.example", 7, "support"),
            Counts(acks_queue_minute=12),
            "held by governor.ack_per_queue_minute = 10 (12 to queue support in the last minute)",
        ),
        (
            Mail("ack", "c@x.example", 9),
            Counts(auto_hour=3),
            "held by governor.auto_per_address_hour = 3 (3 to c@x.example in the last hour)",
        ),
        (
            Mail("closed", "c@x.example", 9),
            Counts(auto_day=6),
            "held by governor.auto_per_address_day = 5 (6 to c@x.example in the last day)",
        ),
        (
            Mail("notify-customer_reply", "alice@example.test", 1),
            Counts(notify_ticket_hour=2),
            "held by governor.notify_per_agent_ticket_hour = 2 "
            "(2 to alice@example.test on ticket #1 in the last hour)",
        ),
        (
            Mail("answer", "c@x.example", 1),
            Counts(ticket_hour=4),
            "held by governor.per_ticket_address_hour = 4 "
            "(4 to c@x.example on ticket #1 in the last hour)",
        ),
    ],
)
def test_the_reason_names_the_cap_the_count_and_whom_it_counts(mail, counts, reason):
    assert check(mail, counts, CAPS).reason == reason
