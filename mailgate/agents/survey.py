"""The satisfaction survey an agent's `#close` or `#status resolved` sends the customer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from mailgate.config.model import Config, Queue
from mailgate.outgoing.compose import Outgoing
from mailgate.outgoing.customer_mails import resolved_notice, survey_block
from mailgate.scheduler.sweeps.mails import mail_facts
from mailgate.store import satisfaction

DONE = ("resolved", "closed")


def ask_on_resolve(
    conn: Connection,
    config: Config,
    queue: Queue,
    before: Row[Any],
    after: Row[Any],
    *,
    cause: str,
    now: datetime,
) -> list[Outgoing]:
    """The survey mail when this change resolved or closed the ticket (not when it was
    already resolved or closed), recorded so the rating reply finds it."""
    if not queue.close.survey or after.status not in DONE or before.status in DONE:
        return []
    if not after.requester_addr:
        return []
    satisfaction.ask(
        conn,
        ticket_id=after.id,
        queue=after.queue,
        agent=after.assignee or before.assignee,
        requester_addr=after.requester_addr,
        trigger=after.status,
        now=now,
    )
    f = mail_facts(conn, [after.id])[after.id]
    review_link = queue.sla.review_link if queue.sla is not None else ""
    block = survey_block(config, queue, f, review_link)
    return [
        resolved_notice(
            config, queue, f, status=after.status, satisfaction=block, cause=cause, now=now
        )
    ]
