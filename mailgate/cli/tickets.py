"""`mailgate tickets list|show|search`: tickets as rich tables; `show --secrets` prints
decrypted PGP content and writes an audit event for it. `search` is cli/search.py."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mailgate.cli import search
from mailgate.cli.output import add_json_flag, bad_choice, print_json, print_table, table
from mailgate.cli.startup import engine, load_config, operator_name
from mailgate.db.models import (
    OPEN_STATUSES,
    TICKET_STATUSES,
    AuditEvent,
    OutboxRow,
    Ticket,
    TicketQueue,
)

console = Console(highlight=False, soft_wrap=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    tl = sub.add_parser("list", help="tickets, highest priority first, then the oldest")
    tl.add_argument("--queue", help="only tickets this queue can see")
    tl.add_argument(
        "--status",
        choices=TICKET_STATUSES,
        help="a status; 'open' means every ticket not closed",
    )
    tl.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
    add_json_flag(tl)
    ts = sub.add_parser("show", help="one ticket: articles, attachments, outbox, audit log")
    ts.add_argument("id", type=int, help="ticket number")
    ts.add_argument("--secrets", action="store_true", help="show decrypted PGP content (audited)")
    help_line = "find tickets (filters, full text, quick search); mass actions"
    search.add_arguments(sub.add_parser("search", help=help_line))


def main(args: argparse.Namespace) -> int:
    if args.action == "search":
        return search.main(args)
    cfg = load_config(args.config)
    db = engine(cfg)
    if args.action == "list":
        names = {q.name for q in cfg.queues}
        if args.queue and args.queue not in names:
            return bad_choice("--queue", args.queue, names)
        rows = ticket_rows(db, queue=args.queue, status=args.status, limit=args.limit)
        if args.json:
            print_json(rows)
        else:
            print_ticket_list(rows)
        return 0
    return print_ticket(db, args.id, show_secrets=args.secrets)


def ticket_rows(engine: Engine, queue: str | None, status: str | None, limit: int) -> list[dict]:
    """The tickets `tickets list` shows, as plain rows (the table and --json print them)."""
    q = select(Ticket)
    if queue:
        q = q.where(Ticket.id.in_(select(TicketQueue.ticket_id).where(TicketQueue.queue == queue)))
    if status == "open":
        q = q.where(Ticket.status.in_(OPEN_STATUSES))
    elif status:
        q = q.where(Ticket.status == status)
    # the SOP order: highest priority first, then the oldest
    q = q.order_by(Ticket.priority.desc(), Ticket.created_at, Ticket.id).limit(limit)
    with Session(engine) as s:
        return [
            {
                "id": t.id,
                "priority": t.priority,
                "status": t.status,
                "queues": sorted({tq.queue for tq in t.queues}) or [t.queue],
                "assignee": t.assignee,
                "requester": t.requester_addr,
                "title": t.title,
                "created": t.created_at.isoformat(),
            }
            for t in s.scalars(q)
        ]


def print_ticket_list(rows: list[dict]) -> None:
    out = table("id", "pri", "status", "queue", "assignee", "requester", "title", "created")
    for r in rows:
        out.add_row(
            str(r["id"]),
            str(r["priority"]),
            r["status"],
            ",".join(r["queues"]),
            r["assignee"] or "-",
            r["requester"],
            r["title"],
            r["created"][:16].replace("T", " "),
        )
    print_table(out)


def _print_routing(s: Session, t: Ticket) -> None:
    """Tags, category, complexity, and the routing rules that matched its first mail."""
    from mailgate.queues.rules import hit_lines
    from mailgate.store.rule_hits import hits_of

    fields = [("tags", ", ".join(sorted(g.tag for g in t.tags)))]
    fields += [("category", t.category), ("complexity", t.complexity)]
    if any(v for _, v in fields):
        console.print("  ".join(f"{k} {v or '-'}" for k, v in fields), markup=False)
    for line in hit_lines(hits_of(s.connection(), t.id)):
        console.print(f"routed by {line}", markup=False)


def print_ticket(engine: Engine, ticket_id: int, show_secrets: bool = False) -> int:
    from mailgate.parse.authentication import auth_line
    from mailgate.pgp.secrets import secret_lines, secrets_of
    from mailgate.pgp.verdicts import verdict_signature_lines
    from mailgate.store.satisfaction import of_ticket

    with Session(engine) as s:
        t = s.get(Ticket, ticket_id)
        if t is None:
            console.print(f"no ticket #{ticket_id}")
            return 1
        secrets: dict[int, list] = {}
        for row in secrets_of(s.connection(), t.id):
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
        _print_routing(s, t)
        console.print(
            f"created {t.created_at:%Y-%m-%d %H:%M:%S}  updated {t.updated_at:%Y-%m-%d %H:%M:%S}"
        )
        for survey in of_ticket(s.connection(), t.id):
            console.print(survey.describe(), markup=False)
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
            for line in verdict_signature_lines(verdict):
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
                for line in secret_lines(r, with_text=True):
                    console.print(line, markup=False)
            if verdict.get("auth"):
                console.print("  " + auth_line(verdict), markup=False)
            reasons = verdict.get("reasons")
            if reasons:
                console.print("  why: " + "; ".join(reasons), style="dim", markup=False)
            if a.defects:
                console.print("  defects: " + "; ".join(a.defects[:5]), style="dim", markup=False)
        out = s.scalars(select(OutboxRow).where(OutboxRow.ticket_id == t.id).order_by(OutboxRow.id))
        for o in out:
            console.print(
                f"outbox {o.kind} to {', '.join(o.rcpt_tos)}: {o.status}"
                + (f" ({o.last_error})" if o.last_error and not o.rcpt_results else ""),
                style="dim",
                markup=False,
            )
            for rcpt, answer in (o.rcpt_results or {}).items():
                console.print(f"  {rcpt}: {answer}", style="dim", markup=False)
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
        from datetime import UTC, datetime

        from mailgate.store.audit import audit

        ids = [r.id for rows in secrets.values() for r in rows if r.ok]
        with engine.begin() as conn:
            audit(conn, ticket_id, operator_name(), "secret-viewed", datetime.now(UTC), secrets=ids)
    return 0
