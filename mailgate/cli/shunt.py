"""`mailgate shunt list|show|retry|discard`: the messages that failed `max_attempts` times."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from rich.console import Console
from rich.table import Column, Table

from mailgate.cli.output import add_json_flag, print_json, print_table
from mailgate.cli.startup import load_config
from mailgate.spool import Spool

console = Console(highlight=False, soft_wrap=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    add_json_flag(
        sub.add_parser("list", help="every shunted message: source, attempts, step, reason")
    )
    for action, help_line in (
        ("show", "one shunted message: each failure, its traceback, the first bytes"),
        ("retry", "put shunted messages back in the spool with a fresh attempt count"),
        ("discard", "delete a shunted message for good"),
    ):
        sp = sub.add_parser(action, help=help_line)
        sp.add_argument(
            "name", help="entry name from `shunt list`" + (" or 'all'" if action == "retry" else "")
        )


def main(args: argparse.Namespace) -> int:
    spool = Spool(load_config(args.config).spool_dir)
    try:
        if args.action == "list" and args.json:
            print_json(shunt_rows(spool))
        elif args.action == "list":
            print_shunt(spool)
        elif args.action == "show":
            print_shunt_entry(spool, args.name)
        elif args.action == "retry":
            names = [e.name for e in spool.shunted()] if args.name == "all" else [args.name]
            for n in names:
                spool.shunt_retry(n)
            print(
                f"{len(names)} message(s) back in the spool; the daemon (or `mailgate "
                "process`) will take them"
            )
        elif args.action == "discard":
            spool.shunt_discard(args.name)
            print(f"discarded {args.name}")
    except FileNotFoundError as e:
        print(f"mailgate shunt: {e}", file=sys.stderr)
        return 1
    return 0


def distinct_failures(failures: Iterable[dict]) -> list[tuple[tuple[str, str], list[int]]]:
    """Each distinct (stage, reason) once, in the order first seen, with the numbers of
    the attempts (from 1) that failed that way."""
    seen: dict[tuple[str, str], list[int]] = {}
    for n, f in enumerate(failures, 1):
        seen.setdefault((str(f.get("stage", "")), str(f.get("reason", ""))), []).append(n)
    return list(seen.items())


def shunt_rows(spool: Spool) -> list[dict]:
    """Each shunted message with its last failure, the reason whole."""
    rows = []
    for e in spool.shunted():
        last = e.envelope.failures[-1] if e.envelope.failures else {}
        rows.append(
            {
                "name": e.name,
                "source": e.envelope.source,
                "mail_from": e.envelope.mail_from,
                "rcpt_tos": list(e.envelope.rcpt_tos),
                "attempts": e.envelope.attempts,
                "stage": str(last.get("stage", "")),
                "reason": str(last.get("reason", "")),
            }
        )
    return rows


def print_shunt(spool: Spool) -> None:
    rows = shunt_rows(spool)
    width = max((len(r["name"]) for r in rows), default=4)
    # names are what `shunt show/retry/discard` take: never cut them, even in a pipe
    table = Table(
        Column("name", no_wrap=True, min_width=width),
        "source",
        "attempts",
        "stage",
        Column("reason", overflow="fold"),  # wrapped, never cut (`shunt show` has the rest)
    )
    for r in rows:
        first_line = (r["reason"].splitlines() or [""])[0]
        table.add_row(r["name"], r["source"], str(r["attempts"]), r["stage"], first_line)
    print_table(table, console)


def print_shunt_entry(spool: Spool, name: str) -> None:
    entries = {e.name: e for e in spool.shunted()}
    if name not in entries:
        raise FileNotFoundError(f"no shunted message {name!r}")
    e = entries[name]
    console.print(
        f"source {e.envelope.source}  from <{e.envelope.mail_from}>  to "
        f"{', '.join(e.envelope.rcpt_tos)}  attempts {e.envelope.attempts}"
    )
    for (stage, reason), attempts in distinct_failures(e.envelope.failures):
        numbers = ", ".join(str(n) for n in attempts)
        console.rule(f"failed at {stage}, attempt{'s' if len(attempts) > 1 else ''} {numbers}")
        console.print(reason, markup=False)
    for t in e.envelope.tracebacks:  # each distinct traceback once
        numbers = ", ".join(map(str, t["attempts"]))
        console.rule(f"traceback at {t['stage']}, attempt(s) {numbers}")
        console.print(t["text"], markup=False)
    raw = spool.shunt_read(name)
    head = raw[:2000].decode("utf-8", "replace")
    console.rule(f"first bytes of the message ({len(raw)} bytes)")
    console.print(head, markup=False)
