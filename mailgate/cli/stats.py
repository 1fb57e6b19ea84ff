"""`mailgate stats`: the ticket statistics (received this month, week, yesterday, today;
unassigned; open by queue and status; SLA breaches now: store/ticket_stats.py), then
counts of tickets, articles, spool, shunt and outbox; then the running
daemon's own figures (cli/stats_daemon.py)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console
from sqlalchemy import Engine, case, func, select

from mailgate.cli.output import print_table, table
from mailgate.cli.startup import engine, load_config
from mailgate.cli.stats_daemon import print_daemon_section
from mailgate.config.model import Config
from mailgate.db import engine as db
from mailgate.db import watch
from mailgate.db.models import OPEN_STATUSES, Article, OutboxRow, Ticket
from mailgate.spool import Spool
from mailgate.store.ticket_stats import PERIODS, ticket_stats

console = Console(highlight=False, soft_wrap=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the ticket statistics as JSON")
    p.add_argument(
        "--tz", default="UTC", help="where days and weeks begin, e.g. Europe/Berlin (default UTC)"
    )


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    try:
        tz = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"mailgate stats: unknown time zone {args.tz!r}", file=sys.stderr)
        return 2
    spool = Spool(cfg.spool_dir)
    if not print_database_state(cfg, spool, quiet=args.json):
        return 1
    database = engine(cfg)
    with database.connect() as conn:
        figures = ticket_stats(conn, datetime.now(UTC), tz, tuple(q.name for q in cfg.queues))
    if args.json:
        print(json.dumps({"tickets": figures}, ensure_ascii=False, indent=1))
        return 0
    print_ticket_stats(figures)
    print_stats(database, spool)
    print_daemon_section(cfg)  # what only the running daemon knows (cli/stats_daemon.py)
    return 0


def print_database_state(cfg: Config, spool: Spool, *, quiet: bool = False) -> bool:
    """Say whether the database answers; when not, what waits in the spool. True if it does.

    `quiet` (for --json): nothing printed when it answers, and the trouble on stderr."""
    probe_engine = db.make_engine(cfg.database_url, cfg.database)
    try:
        reason = watch.probe(probe_engine)
    finally:
        probe_engine.dispose()
    if reason is None:
        if not quiet:
            console.print("database: ok")
        return True
    out = Console(stderr=True, highlight=False) if quiet else console
    out.print(f"database: unreachable: {reason}", markup=False)
    out.print(f"spool waiting: {spool.pending()} (processed when the database is back)")
    out.print(f"shunt: {len(spool.shunted())}")
    return False


def print_ticket_stats(figures: dict[str, Any]) -> None:
    """H-Sphere's statistics table per queue and in total, and the open tickets by status."""
    received = table(
        "queue", *PERIODS, "unassigned", "open", "SLA breached",
        title=f"tickets received ({figures['timezone']}); open now",
    )  # fmt: skip
    by_status = table("queue", *OPEN_STATUSES, title="open tickets by status")
    rows = [*figures["queues"].items(), ("total", figures["total"])]
    for name, f in rows:
        style = "bold" if name == "total" else None
        received.add_row(
            name,
            *(str(f["received"][p]) for p in PERIODS),
            str(f["unassigned"]),
            str(f["open_total"]),
            str(f["sla_breached"]),
            style=style,
        )
        by_status.add_row(name, *(str(f["open"].get(s, 0)) for s in OPEN_STATUSES), style=style)
    print_table(received, console)
    print_table(by_status, console)


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
                func.sum(case((OutboxRow.status == "held", 1), else_=0)),
                func.sum(case((OutboxRow.status == "dropped", 1), else_=0)),
            )
        ).one()
    counts = table("what", "count")
    for st, n in sorted(by_status.items()):
        counts.add_row(f"tickets {st}", str(n))
    counts.add_row("articles", str(articles))
    counts.add_row("spool waiting", str(spool.pending()))
    counts.add_row("shunt", str(len(spool.shunted())))
    counts.add_row(
        "outbox pending / sent / failed", f"{outbox[0] or 0} / {outbox[1] or 0} / {outbox[2] or 0}"
    )
    counts.add_row("outbox held / dropped", f"{outbox[3] or 0} / {outbox[4] or 0}")
    print_table(counts, console)
