"""[governor] in mailgate.toml: caps on what mailgate sends (outgoing/governor.py).

Each cap is a count in a sliding window; 0 switches that cap off. Mail over a cap is held
(kept, visible in `mailgate outbox list --held`, released or dropped by hand), never
dropped silently.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mailgate.config.base import Strict

Cap = Annotated[int, Field(ge=0, le=100_000)]


class GovernorSettings(Strict):
    enabled: bool = True
    # automatic mails (acknowledgements, closing and escalation notices) to one address
    auto_per_address_hour: Cap = 10
    auto_per_address_day: Cap = 30
    # mails of any kind to one address about one ticket, answers included
    per_ticket_address_hour: Cap = 20
    # notifications to one agent about one ticket
    notify_per_agent_ticket_hour: Cap = 5
    # acknowledgements per queue per minute, against backscatter from forged senders
    ack_per_queue_minute: Cap = 120
    # notifications held by notify_per_agent_ticket_hour go out as one digest per agent and
    # ticket once the oldest has waited this long (the cap's window); false: they stay held
    digest: bool = True
    digest_after_minutes: float = Field(60.0, ge=0, le=10_080)
