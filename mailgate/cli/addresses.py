"""`mailgate addresses list [--all] | clear ADDR`: customer addresses that bounced."""

from __future__ import annotations

import argparse
import sys

from mailgate.cli.output import add_json_flag, print_json, print_table, table
from mailgate.cli.startup import engine, load_config
from mailgate.store.addresses import clear, list_states


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="failing addresses and until when automatic mail pauses")
    ls.add_argument("--all", action="store_true", help="also addresses with only delays noted")
    add_json_flag(ls)
    cl = sub.add_parser("clear", help="forget an address's bounces: automatic mail resumes")
    cl.add_argument("address", help="the customer address, as `addresses list` shows it")


def main(args: argparse.Namespace) -> int:
    db = engine(load_config(args.config))
    if args.action == "list":
        with db.connect() as conn:
            rows = list_states(conn, failing_only=not args.all)
        if args.json:
            print_json(r._asdict() for r in rows)
            return 0
        t = table("address", "status", "kind", "bounces", "delays", "paused until", "last report")
        for r in rows:
            pause = f"{r.paused_until:%Y-%m-%d %H:%M}" if r.paused_until else ""
            ticket = f" (ticket #{r.last_ticket_id})" if r.last_ticket_id else ""
            last = f"{r.last_report_at:%Y-%m-%d %H:%M} {r.last_status}{ticket}: {r.last_diagnostic}"
            kind = "hard" if r.hard else "soft"
            t.add_row(r.address, r.status, kind, str(r.bounces), str(r.delays), pause, last)
        print_table(t)
        print(f"{len(rows)} address(es)")
        return 0
    with db.begin() as conn:
        found = clear(conn, args.address)
    if not found:
        print(f"mailgate addresses: no state for {args.address}", file=sys.stderr)
        return 1
    print(f"{args.address} cleared: automatic mail to it goes out again")
    return 0
