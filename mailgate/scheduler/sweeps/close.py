"""The close sweep: answered tickets the customer left alone for `close.after_days` days
are closed, and the customer is told."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, update

from mailgate.autoresponse.render import TemplateError
from mailgate.config.model import Config, Queue
from mailgate.outgoing.customer_mails import survey_block
from mailgate.runtime import chunks
from mailgate.scheduler.sweeps.mails import closing_mail, mail_facts, queue_mails
from mailgate.scheduler.sweeps.sql import ACTOR, CHUNK, capped_ticket_update, ticket_sla
from mailgate.store import satisfaction
from mailgate.store.audit import audit
from mailgate.store.tickets import tickets

log = logging.getLogger(__name__)


def sweep_close(conn: Connection, config: Config, now: datetime) -> int:
    """Close answered tickets the customer left alone for `close.after_days` days."""
    changed = 0
    # the review link comes from [sla] even where the SLA itself is disabled
    links = {q.name: q.sla.review_link for q in config.queues if q.sla is not None}
    for queue in config.queues:
        days = queue.close.after_days
        if days < 0:
            continue
        with conn.begin_nested() as sp:
            try:
                changed += _close_queue(conn, config, queue, days, links.get(queue.name, ""), now)
            except TemplateError as e:
                log.error("close sweep of queue %s rolled back: %s", queue.name, e)
                sp.rollback()
    return changed


def _close_queue(
    conn: Connection, config: Config, queue: Queue, days: int, review_link: str, now: datetime
) -> int:
    cut = now - timedelta(days=days)
    q = queue.name

    def quiet(s: Any) -> list[ColumnElement[bool]]:
        when = func.coalesce(s.m_answer_at, s.m_updated_at)
        return [s.m_status == "answered", s.m_queue == q, when <= cut]

    def live(t: Any) -> list[ColumnElement[bool]]:
        when = func.coalesce(t.last_answer_at, t.updated_at)
        return [t.queue == q, t.status == "answered", when <= cut]

    t = tickets.c
    rows = conn.execute(
        capped_ticket_update(quiet, live)
        .values(status="closed", closed_at=now, updated_at=now)
        .returning(t.id, t.last_answer_at)
    ).all()
    for chunk in chunks([r.id for r in rows], CHUNK):  # the mirror follows at once
        conn.execute(
            update(ticket_sla).where(ticket_sla.c.ticket_id.in_(chunk)).values(m_status="closed")
        )
    facts = mail_facts(conn, [r.id for r in rows])
    for tid, answered in rows:
        f = facts[tid]
        audit(conn, tid, ACTOR, "closed", now, reason="auto-close", after_days=days)
        if not f.requester_addr:
            continue
        survey = ""
        if queue.close.survey:
            satisfaction.ask(
                conn,
                ticket_id=tid,
                queue=q,
                agent=f.assignee,
                requester_addr=f.requester_addr,
                trigger="auto-close",
                now=now,
            )
            survey = survey_block(config, queue, f, review_link)
        out = closing_mail(
            config,
            queue,
            f,
            days=days,
            review_link=review_link,
            answered=answered,
            now=now,
            satisfaction=survey,
        )
        queue_mails(conn, config, [out], now)
    if rows:
        log.info("queue %s: closed %d answered ticket(s)", queue.name, len(rows))
    return len(rows)
