"""`mailgate outbox list [--held] | release ID|all | drop ID`: what the governor held back."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from sqlalchemy import select

from mailgate.cli.output import add_json_flag, print_json
from mailgate.cli.startup import engine, load_config
from mailgate.db.models import OutboxRow
from mailgate.runtime import utcnow
from mailgate.store.outbox import drop_held, release_held

console = Console(highlight=False, soft_wrap=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="outbox rows not yet sent (pending, held)")
    ls.add_argument("--held", action="store_true", help="only mail the governor held back")
    add_json_flag(ls)
    rel = sub.add_parser("release", help="send held mail after all")
    rel.add_argument("id", help="outbox row id from `outbox list --held`, or 'all'")
    drop = sub.add_parser("drop", help="never send a held mail (it is kept, marked dropped)")
    drop.add_argument("id", type=int, help="outbox row id from `outbox list --held`")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    db = engine(cfg)
    if args.action == "list":
        statuses = ["held"] if args.held else ["held", "pending"]
        with db.connect() as conn:
            rows = conn.execute(
                select(
                    OutboxRow.id,
                    OutboxRow.status,
                    OutboxRow.kind,
                    OutboxRow.ticket_id,
                    OutboxRow.rcpt_tos,
                    OutboxRow.created_at,
                    OutboxRow.last_error,
                )
                .where(OutboxRow.status.in_(statuses))
                .order_by(OutboxRow.id)
            ).all()
        if args.json:
            print_json(r._asdict() for r in rows)
            return 0
        for r in rows:
            ticket = f" #{r.ticket_id}" if r.ticket_id else ""
            console.print(
                f"{r.id} {r.status} {r.kind}{ticket} to {', '.join(r.rcpt_tos)} "
                f"queued {r.created_at:%Y-%m-%d %H:%M:%S}"
                + (f": {r.last_error}" if r.last_error else ""),
                markup=False,
            )
        console.print(f"{len(rows)} row(s)", markup=False)
        return 0
    if args.action == "release" and args.id != "all" and not args.id.isdigit():
        print(f"mailgate outbox: not an id or 'all': {args.id!r}", file=sys.stderr)
        return 2
    with db.begin() as conn:
        if args.action == "release":
            ids = None if args.id == "all" else [int(args.id)]
            n = release_held(conn, ids, utcnow(), cfg.relay.give_up_after_hours)
        else:
            n = drop_held(conn, [args.id])
    if n == 0 and args.id != "all":
        print(f"mailgate outbox: no held row {args.id}", file=sys.stderr)
        return 1
    done = "released: the sender takes them now" if args.action == "release" else "dropped"
    print(f"{n} row(s) {done}")
    return 0
