"""`mailgate stats`: counts of tickets, articles, spool, shunt and outbox."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, case, func, select

from mailgate.cli.startup import engine, load_config
from mailgate.config.model import Config
from mailgate.db import engine as db
from mailgate.db import watch
from mailgate.db.models import Article, OutboxRow, Ticket
from mailgate.spool import Spool

console = Console(highlight=False, soft_wrap=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No options of its own."""


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    spool = Spool(cfg.spool_dir)
    if not print_database_state(cfg, spool):
        return 1
    print_stats(engine(cfg), spool)
    return 0


def print_database_state(cfg: Config, spool: Spool) -> bool:
    """Say whether the database answers; when not, what waits in the spool. True if it does."""
    probe_engine = db.make_engine(cfg.database_url, cfg.database)
    try:
        reason = watch.probe(probe_engine)
    finally:
        probe_engine.dispose()
    if reason is None:
        console.print("database: ok")
        return True
    console.print(f"database: unreachable: {reason}")
    console.print(f"spool waiting: {spool.pending()} (processed when the database is back)")
    console.print(f"shunt: {len(spool.shunted())}")
    return False


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
    table = Table("what", "count")
    for st, n in sorted(by_status.items()):
        table.add_row(f"tickets {st}", str(n))
    table.add_row("articles", str(articles))
    table.add_row("spool waiting", str(spool.pending()))
    table.add_row("shunt", str(len(spool.shunted())))
    table.add_row(
        "outbox pending / sent / failed", f"{outbox[0] or 0} / {outbox[1] or 0} / {outbox[2] or 0}"
    )
    table.add_row("outbox held / dropped", f"{outbox[3] or 0} / {outbox[4] or 0}")
    console.print(table)
