"""`mailgate ingest`: the MTA pipe (pollers/pipe.py). Imports only what spooling needs."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import TYPE_CHECKING

from mailgate.cli.commands import default_config_path
from mailgate.pollers import pipe

if TYPE_CHECKING:
    import argparse

# option -> (attribute, takes a value); the same options add_arguments declares
_GLOBAL = {"-c": ("config", True), "--config": ("config", True), "--log-level": ("log_level", True)}
_OWN = {
    "--queue": ("queue", True),
    "--sender": ("sender", True),
    "--recipient": ("recipient", True),
    "-v": ("verbose", False),
    "--verbose": ("verbose", False),
}
_LOG_LEVELS = ("debug", "info", "warning", "error")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queue", help="queue name (else taken from recipients/headers)")
    p.add_argument("--sender", help="envelope sender, e.g. Postfix ${sender}")
    p.add_argument("--recipient", action="append", help="envelope recipient (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the spool entry's name")


def fast_arguments(argv: list[str]) -> SimpleNamespace | None:
    """The arguments of an ordinary `ingest` call, read without argparse (about 10 ms of
    imports per message); None for anything else (another command, --help, an unknown or
    abbreviated option, a value that looks like an option), which argparse then handles.
    Gives exactly what argparse would for the argument lists it accepts."""
    args = SimpleNamespace(
        config=default_config_path(),
        log_level=None,
        command="ingest",
        queue=None,
        sender=None,
        recipient=None,
        verbose=False,
    )
    options, i, seen_command = _GLOBAL, 0, False
    while i < len(argv):
        word = argv[i]
        if not seen_command and word == "ingest":
            options, seen_command, i = _OWN, True, i + 1
            continue
        name, eq, inline = word.partition("=")
        spec = options.get(name)
        if spec is None or (eq and not spec[1]):
            return None
        attr, takes_value = spec
        if not takes_value:
            setattr(args, attr, True)
            i += 1
            continue
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
        else:
            return None
        if value.startswith("-") or (attr == "log_level" and value not in _LOG_LEVELS):
            return None
        if attr == "recipient":
            args.recipient = [*(args.recipient or []), value]
        else:
            setattr(args, attr, value)
    return args if seen_command else None


def main(args: argparse.Namespace | SimpleNamespace) -> int:
    return pipe.ingest(
        args.config,
        sys.stdin.buffer,
        queue=args.queue or "",
        sender=args.sender or "",
        recipients=tuple(args.recipient or ()),
        verbose=args.verbose,
    )
