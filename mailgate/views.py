"""Terminal views for the CLI (rich tables). Read-only."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from mailgate.models import OPEN_STATUSES, Article, AuditEvent, OutboxRow, Ticket, TicketQueue
from mailgate.spool import Spool

console = Console(highlight=False, soft_wrap=True)


def print_ticket_list(engine: Engine, queue: str | None, status: str | None, limit: int) -> None:
    q = select(Ticket)
    if queue:
        q = q.where(Ticket.id.in_(select(TicketQueue.ticket_id).where(TicketQueue.queue == queue)))
    if status == "open":
        q = q.where(Ticket.status.in_(OPEN_STATUSES))
    elif status:
        q = q.where(Ticket.status == status)
    # the SOP order: highest priority first, then the oldest
    q = q.order_by(Ticket.priority.desc(), Ticket.created_at, Ticket.id).limit(limit)
    table = Table("id", "pri", "status", "queue", "assignee", "requester", "title", "created")
    with Session(engine) as s:
        for t in s.scalars(q):
            queues = ",".join(sorted({tq.queue for tq in t.queues})) or t.queue
            table.add_row(
                str(t.id),
                str(t.priority),
                t.status,
                queues,
                t.assignee or "-",
                t.requester_addr,
                t.title[:60],
                t.created_at.strftime("%Y-%m-%d %H:%M"),
            )
    console.print(table)


def print_ticket(engine: Engine, ticket_id: int, show_secrets: bool = False) -> int:
    with Session(engine) as s:
        t = s.get(Ticket, ticket_id)
        if t is None:
            console.print(f"no ticket #{ticket_id}")
            return 1
        queues = ", ".join(sorted({tq.queue for tq in t.queues}))
        console.print(f"[bold]#{t.id} {t.title}[/bold]")
        console.print(
            f"requester {t.requester_name} <{t.requester_addr}>  queue {t.queue} "
            f"(visible in {queues})  status {t.status}  priority {t.priority}  "
            f"assignee {t.assignee or '-'}  sticky {t.sticky}  tier {t.tier}"
        )
        if t.ccs:
            console.print("cc " + ", ".join(c.address for c in t.ccs))
        console.print(
            f"created {t.created_at:%Y-%m-%d %H:%M:%S}  updated {t.updated_at:%Y-%m-%d %H:%M:%S}"
        )
        for a in t.articles:
            who = a.from_addr or a.author or a.from_name
            flag = " (automatic)" if a.auto else ""
            console.rule(f"{a.kind} #{a.id} {a.created_at:%Y-%m-%d %H:%M} {who}{flag}")
            if a.subject:
                console.print(f"Subject: {a.subject}")
            console.print(a.body_text.rstrip() or "(no text)")
            for att in a.attachments:
                console.print(f"  attachment: {att.filename} ({att.content_type})")
            reasons = (a.verdict or {}).get("reasons")
            if reasons:
                console.print("  why: " + "; ".join(reasons), style="dim")
            if a.defects:
                console.print("  defects: " + "; ".join(a.defects[:5]), style="dim")
        out = s.scalars(select(OutboxRow).where(OutboxRow.ticket_id == t.id).order_by(OutboxRow.id))
        for o in out:
            console.print(
                f"outbox {o.kind} to {', '.join(o.rcpt_tos)}: {o.status}"
                + (f" ({o.last_error})" if o.last_error else ""),
                style="dim",
            )
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.ticket_id == t.id).order_by(AuditEvent.id)
        )
        for e in events:
            console.print(
                f"audit {e.at:%Y-%m-%d %H:%M:%S} {e.actor} {e.action} "
                f"{json.dumps(e.detail, ensure_ascii=False)}",
                style="dim",
            )
    return 0


def print_shunt(spool: Spool) -> None:
    table = Table("name", "source", "attempts", "stage", "reason")
    for e in spool.shunted():
        last = e.envelope.failures[-1] if e.envelope.failures else {}
        reason = str(last.get("reason", "")).splitlines()[0][:80] if last else ""
        table.add_row(
            e.name, e.envelope.source, str(e.envelope.attempts), str(last.get("stage", "")), reason
        )
    console.print(table)


def print_shunt_entry(spool: Spool, name: str) -> None:
    entries = {e.name: e for e in spool.shunted()}
    if name not in entries:
        raise FileNotFoundError(f"no shunted message {name!r}")
    e = entries[name]
    console.print(
        f"source {e.envelope.source}  from <{e.envelope.mail_from}>  to "
        f"{', '.join(e.envelope.rcpt_tos)}  attempts {e.envelope.attempts}"
    )
    for f in e.envelope.failures:
        console.rule(f"failed at {f.get('stage')}")
        console.print(f.get("reason", ""))
    raw = spool.shunt_read(name)
    head = raw[:2000].decode("utf-8", "replace")
    console.rule(f"first bytes of the message ({len(raw)} bytes)")
    console.print(head, markup=False)


def print_stats(engine: Engine, spool: Spool) -> None:
    with engine.connect() as conn:
        by_status = dict(
            conn.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all()
        )
        articles = conn.execute(select(func.count()).select_from(Article)).scalar_one()
        outbox = conn.execute(
            select(
                func.sum(case((OutboxRow.status == "pending", 1), else_=0)),
                func.sum(case((OutboxRow.status == "sent", 1), else_=0)),
                func.sum(case((OutboxRow.status == "failed", 1), else_=0)),
            )
        ).one()
    table = Table("what", "count")
    for st, n in sorted(by_status.items()):
        table.add_row(f"tickets {st}", str(n))
    table.add_row("articles", str(articles))
    table.add_row("spool waiting", str(spool.pending()))
    table.add_row("shunt", str(len(spool.shunted())))
    table.add_row(
        "outbox pending / sent / failed", f"{outbox[0] or 0} / {outbox[1] or 0} / {outbox[2] or 0}"
    )
    console.print(table)
