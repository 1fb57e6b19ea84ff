"""`mailgate import mbox|maildir PATH --queue Q`: an existing mailbox through the normal
path — each message into the spool (pollers/mailbox.py reads it), then the worker, as if
it had just arrived at the queue: deduplicated, threaded, stored. Acknowledgements and
agent notifications only with `--ack` / `--notify`. Importing again creates nothing.

When a running daemon holds the spool, the messages are spooled for it to process.
"""

from __future__ import annotations

import argparse
import json
import mailbox
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, func, select

from mailgate.cli.startup import ensure_secret, load_config, setup_logging
from mailgate.config.model import Config
from mailgate.db.models import Article, Ticket
from mailgate.envelope import IMPORT_SOURCE
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import BatchResult, Worker
from mailgate.pollers.mailbox import FORMATS, MailboxError, messages, open_mailbox
from mailgate.spool import Envelope, Spool, SpoolLocked
from mailgate.startup import StartupError, open_stores

console = Console(highlight=False, stderr=True)
CHUNK = 200  # messages spooled, then processed, per round: the bar moves, the spool stays small


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=FORMATS, help="mbox (one file) or maildir (a directory)")
    p.add_argument("path", type=Path, help="the mbox file or the Maildir directory")
    p.add_argument("--queue", required=True, help="the queue the mailbox belongs to")
    p.add_argument("--ack", action="store_true", help="acknowledge new tickets to customers")
    p.add_argument("--notify", action="store_true", help="notify agents as for new mail")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    setup_logging(args.log_level or "warning")
    if cfg.queue(args.queue) is None:
        print(f"mailgate import: no queue named {args.queue!r}", file=sys.stderr)
        return os.EX_USAGE
    try:
        box = open_mailbox(args.format, args.path)
    except MailboxError as e:
        print(f"mailgate import: {e}", file=sys.stderr)
        return os.EX_NOINPUT
    ensure_secret(cfg)  # notifications carry reply tokens
    source = "+".join([IMPORT_SOURCE] + ["ack"] * args.ack + ["notify"] * args.notify)
    envelope = Envelope(source=source, queue=args.queue)
    try:
        db, spool = open_stores(cfg)
    except SpoolLocked:  # the daemon works the spool: hand the messages to it
        db, spool = None, Spool(cfg.spool_dir)
    except StartupError as e:
        print(f"mailgate: cannot start: {e}", file=sys.stderr)
        return e.exit_code
    try:
        summary = _import(cfg, db, spool, box, envelope, args)
    finally:
        if db is not None:
            spool.unlock()
            db.dispose()
    _print_summary(summary, args.json)
    return 0


def _import(
    cfg: Config,
    db: Engine | None,
    spool: Spool,
    box: mailbox.Mailbox,
    envelope: Envelope,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Spool the mailbox's messages a chunk at a time and process each chunk (unless the
    daemon holds the spool: `db` is None); the summary."""
    locked = db is None
    before = _counts(db) if db is not None else (0, 0)
    total = BatchResult()
    read = 0
    with Keyrings() as keyrings, _progress() as bar:
        task = bar.add_task(f"import {args.path.name}", total=len(box))
        worker = None if locked else Worker(cfg, db, spool, Pipeline(cfg, keyrings=keyrings))
        pending = 0
        for raw in messages(box):
            spool.put(raw, envelope)
            read += 1
            pending += 1
            if worker is None:
                bar.advance(task)
            elif pending == CHUNK:
                _add(total, worker.drain())
                bar.advance(task, pending)
                pending = 0
        if worker is not None and pending:
            _add(total, worker.drain())
            bar.advance(task, pending)
    summary = {"read": read, "queue": args.queue, "acknowledged": args.ack}
    if locked:
        summary["spooled_for_the_running_daemon"] = read
    else:
        after = _counts(db)
        summary.update(
            new_tickets=after[0] - before[0],
            new_articles=after[1] - before[1],
            stored=total.stored,
            duplicates=total.duplicates,
            shunted=total.shunted,
        )
    return summary


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _add(total: BatchResult, r: BatchResult) -> None:
    total.stored += r.stored
    total.duplicates += r.duplicates
    total.retried += r.retried
    total.shunted += r.shunted


def _counts(db: Engine) -> tuple[int, int]:
    with db.connect() as conn:
        tickets = conn.execute(select(func.count()).select_from(Ticket)).scalar_one()
        articles = conn.execute(select(func.count()).select_from(Article)).scalar_one()
    return int(tickets), int(articles)


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    if "spooled_for_the_running_daemon" in summary:
        print(f"{summary['read']} message(s) spooled; the running mailgate processes them")
        return
    print(
        f"{summary['read']} message(s) read: {summary['new_tickets']} new ticket(s), "
        f"{summary['new_articles']} new article(s), {summary['duplicates']} already there, "
        f"{summary['shunted']} shunted (mailgate shunt list)"
    )
