"""`mailgate ingest`: the MTA pipe (pollers/pipe.py). Imports only what spooling needs."""

from __future__ import annotations

import argparse
import sys

from mailgate.pollers import pipe


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queue", help="queue name (else taken from recipients/headers)")
    p.add_argument("--sender", help="envelope sender, e.g. Postfix ${sender}")
    p.add_argument("--recipient", action="append", help="envelope recipient (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true")


def main(args: argparse.Namespace) -> int:
    return pipe.ingest(
        args.config,
        sys.stdin.buffer,
        queue=args.queue or "",
        sender=args.sender or "",
        recipients=tuple(args.recipient or ()),
        verbose=args.verbose,
    )
