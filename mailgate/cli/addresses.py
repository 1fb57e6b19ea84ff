"""`mailgate addresses list [--all] | clear ADDR`: customer addresses that bounced."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from mailgate.cli.startup import engine, load_config
from mailgate.store.addresses import clear, list_states

console = Console(highlight=False, soft_wrap=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="failing addresses and until when automatic mail pauses")
    ls.add_argument("--all", action="store_true", help="also addresses with only delays noted")
    cl = sub.add_parser("clear", help="forget an address's bounces: automatic mail resumes")
    cl.add_argument("address")


def main(args: argparse.Namespace) -> int:
    db = engine(load_config(args.config))
    if args.action == "list":
        with db.connect() as conn:
            rows = list_states(conn, failing_only=not args.all)
        for r in rows:
            pause = f" paused until {r.paused_until:%Y-%m-%d %H:%M}" if r.paused_until else ""
            kind = "hard" if r.hard else "soft"
            ticket = f" ticket #{r.last_ticket_id}" if r.last_ticket_id else ""
            console.print(
                f"{r.address} {r.status} ({kind}) bounces={r.bounces} delays={r.delays}{pause}"
                f" last {r.last_report_at:%Y-%m-%d %H:%M} {r.last_status}{ticket}: "
                f"{r.last_diagnostic[:160]}",
                markup=False,
            )
        console.print(f"{len(rows)} address(es)", markup=False)
        return 0
    with db.begin() as conn:
        found = clear(conn, args.address)
    if not found:
        print(f"mailgate addresses: no state for {args.address}", file=sys.stderr)
        return 1
    print(f"{args.address} cleared: automatic mail to it goes out again")
    return 0
