"""`mailgate report --month 2026-11 [--html FILE] [--json]`: the monthly KPI report
(docs/report.md). The store reads the rows, mailgate/report/ computes and draws."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mailgate.cli.output import print_table
from mailgate.cli.startup import engine, load_config
from mailgate.config.model import Config
from mailgate.report.build import Options, build
from mailgate.report.figures import Settings
from mailgate.report.html import AGENT_COLUMNS, QUEUE_COLUMNS, cell, render_html
from mailgate.report.rows import Month
from mailgate.report.sla import Targets

console = Console(highlight=False, soft_wrap=True)


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--month", type=_month, required=True, help="the month, like 2026-11")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write the report with charts")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def settings(cfg: Config, month: Month, now: datetime) -> tuple[Settings, Options]:
    targets = {q.name: Targets.of(q.sla) for q in cfg.queues if q.sla is not None and q.sla.enabled}
    r = cfg.report
    return (
        Settings(weights=r.weights(), targets=targets, as_of=min(now, month.end)),
        Options(
            top=r.top, cluster_threshold=r.cluster_threshold, cluster_min_size=r.cluster_min_size
        ),
    )


def make_report(cfg: Config, month: Month, now: datetime | None = None) -> dict[str, Any]:
    from mailgate.store.report_rows import report_rows

    s, o = settings(cfg, month, now or datetime.now(UTC))
    with engine(cfg).connect() as conn:
        rows = report_rows(conn, month)
    return build(rows, s, o)


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    report = make_report(cfg, args.month)
    if args.html:
        args.html.write_text(render_html(report), encoding="utf-8")
    if args.json:
        json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        print_report(report)
    if args.html:
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def _table(title: str, first: str, columns: tuple[tuple[str, str], ...], rows: list[dict]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(first, overflow="fold")
    for _, heading in columns:
        table.add_column(heading, justify="right")
    for r in rows:
        table.add_row(r["name"], *(cell(r[k]) for k, _ in columns))
    return table


def print_report(r: dict[str, Any]) -> None:
    console.print(f"Support report {r['month']} (SLA as of {r['as_of']})", style="bold")
    total = {"name": "total", **r["total"]}
    print_table(_table("Per queue", "queue", QUEUE_COLUMNS, [*r["queues"], total]), console)
    print_table(_table("Per agent", "agent", AGENT_COLUMNS, r["agents"]), console)
    for kind in ("tags", "categories"):
        table = Table(title=f"Top {kind}", title_justify="left")
        for heading in (kind, r["month"], r["previous_month"], "change"):
            table.add_column(
                heading, justify="left" if heading == kind else "right", overflow="fold"
            )
        for t in r[kind]:
            table.add_row(t["name"], str(t["count"]), str(t["previous"]), f"{t['change']:+d}")
        print_table(table, console)
    table = Table(title="Repetitive issues", title_justify="left")
    for heading in ("issue", "tickets", "examples"):
        table.add_column(heading, overflow="fold")
    for c in r["repetitive_issues"]:
        table.add_row(c["label"], str(c["count"]), " ".join(f"#{i}" for i in c["examples"]))
    print_table(table, console)
