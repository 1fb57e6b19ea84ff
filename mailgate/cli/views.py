"""Terminal views for the CLI (rich tables). Read-only."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Column, Table
from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from mailgate.db.models import OPEN_STATUSES, Article, AuditEvent, OutboxRow, Ticket, TicketQueue
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
    from mailgate.pgp import store as pgp_store

    with Session(engine) as s:
        t = s.get(Ticket, ticket_id)
        if t is None:
            console.print(f"no ticket #{ticket_id}")
            return 1
        secrets: dict[int, list] = {}
        for row in pgp_store.secrets_of(s.connection(), t.id):
            secrets.setdefault(row.article_id, []).append(row)
        queues = ", ".join(sorted({tq.queue for tq in t.queues}))
        console.print(f"#{t.id} {t.title}", style="bold", markup=False)
        console.print(
            f"requester {t.requester_name} <{t.requester_addr}>  queue {t.queue} "
            f"(visible in {queues})  status {t.status}  priority {t.priority}  "
            f"assignee {t.assignee or '-'}  sticky {t.sticky}  tier {t.tier}",
            markup=False,
        )
        if t.ccs:
            console.print("cc " + ", ".join(c.address for c in t.ccs), markup=False)
        console.print(
            f"created {t.created_at:%Y-%m-%d %H:%M:%S}  updated {t.updated_at:%Y-%m-%d %H:%M:%S}"
        )
        for a in t.articles:
            who = a.from_addr or a.author or a.from_name
            flag = " (automatic)" if a.auto else ""
            console.rule(f"{a.kind} #{a.id} {a.created_at:%Y-%m-%d %H:%M} {who}{flag}")
            if a.subject:
                console.print(f"Subject: {a.subject}", markup=False)
            console.print(a.body_text.rstrip() or "(no text)", markup=False)
            hidden = 0
            for att in a.attachments:
                if att.agent_only and not show_secrets:
                    hidden += 1
                    continue
                mark = " [agent-only, decrypted]" if att.agent_only else ""
                console.print(
                    f"  attachment: {att.filename} ({att.content_type}){mark}", markup=False
                )
            verdict = a.verdict or {}
            for line in pgp_store.verdict_signature_lines(verdict):
                console.print("  " + line, markup=False)
            parts = secrets.get(a.id, [])
            if parts and not show_secrets:
                ok = sum(1 for r in parts if r.ok)
                console.print(
                    f"  PGP: {len(parts)} encrypted part(s), {ok} decrypted, {len(parts) - ok} not"
                    + (f", {hidden} agent-only file(s)" if hidden else "")
                    + f" (mailgate tickets show {t.id} --secrets)",
                    markup=False,
                )
            for r in parts if show_secrets else ():
                for line in pgp_store.secret_lines(r, with_text=True):
                    console.print(line, markup=False)
            reasons = verdict.get("reasons")
            if reasons:
                console.print("  why: " + "; ".join(reasons), style="dim", markup=False)
            if a.defects:
                console.print("  defects: " + "; ".join(a.defects[:5]), style="dim", markup=False)
        out = s.scalars(select(OutboxRow).where(OutboxRow.ticket_id == t.id).order_by(OutboxRow.id))
        for o in out:
            console.print(
                f"outbox {o.kind} to {', '.join(o.rcpt_tos)}: {o.status}"
                + (f" ({o.last_error})" if o.last_error else ""),
                style="dim",
                markup=False,
            )
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.ticket_id == t.id).order_by(AuditEvent.id)
        )
        for e in events:
            console.print(
                f"audit {e.at:%Y-%m-%d %H:%M:%S} {e.actor} {e.action} "
                f"{json.dumps(e.detail, ensure_ascii=False)}",
                style="dim",
                markup=False,
            )
    if show_secrets:  # every look at decrypted content is on the record
        import getpass
        import os
        from datetime import UTC, datetime

        from mailgate.store import tickets as store

        try:
            actor = os.getlogin()
        except OSError:
            actor = os.environ.get("USER") or getpass.getuser()
        ids = [r.id for rows in secrets.values() for r in rows if r.ok]
        with engine.begin() as conn:
            store.audit(
                conn, ticket_id, actor[:320], "secret-viewed", datetime.now(UTC), secrets=ids
            )
    return 0


def print_shunt(spool: Spool) -> None:
    entries = spool.shunted()
    width = max((len(e.name) for e in entries), default=4)
    # names are what `shunt show/retry/discard` take: never cut them, even in a pipe
    table = Table(
        Column("name", no_wrap=True, min_width=width), "source", "attempts", "stage", "reason"
    )
    for e in entries:
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
    for t in e.envelope.tracebacks:  # each distinct traceback once
        console.rule(f"traceback at {t['stage']}, attempt(s) {', '.join(map(str, t['attempts']))}")
        console.print(t["text"], markup=False)
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
