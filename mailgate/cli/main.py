"""mailgate's command line: argparse and dispatch only.

Each command group is a module of this package with `add_arguments(parser)` and
`main(args) -> int`, imported only when that command runs, so `mailgate ingest` (one
process per message from the MTA) loads only what spooling needs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

DESCRIPTION = "The mail side of a helpdesk: intake, tickets, auto-responses, agent commands."
# command -> (module of mailgate.cli, help line)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the daemon"),
    "ingest": ("ingest", "read one message on stdin into the spool (MTA pipe)"),
    "check-config": ("check_config", "validate the configuration"),
    "process": ("process", "process the spool once and send due mail, then exit"),
    "tickets": ("tickets", "list or show tickets"),
    "shunt": ("shunt", "messages that could not be processed"),
    "agents": ("agents", "agent helpers"),
    "stats": ("stats", "counts of tickets, spool, shunt and outbox"),
    "outbox": ("outbox", "mail the governor held back: list, release, drop"),
    "keys": ("keys", "PGP keys of a queue: create, import, export, list"),
}


class _Formatter(argparse.HelpFormatter):
    """argparse's own, with the terminal width found without `shutil` (argparse imports it
    for every parser it builds: a few ms on each message the MTA pipes in)."""

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
        except (ValueError, OSError):
            columns = 80
        super().__init__(prog, width=columns - 2)


def default_config_path() -> str:
    env = os.environ.get("MAILGATE_CONFIG")
    if env:
        return env
    local = Path("config/mailgate.toml")
    return str(local) if local.exists() else "/etc/mailgate/mailgate.toml"


def _global_options(p: argparse.ArgumentParser, config_default: str | None) -> None:
    p.add_argument(
        "-c",
        "--config",
        default=config_default,
        help="path to mailgate.toml (default: $MAILGATE_CONFIG, "
        "./config/mailgate.toml, /etc/mailgate/mailgate.toml)",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def _named_command(argv: list[str]) -> str | None:
    """The command `argv` names (the first word after the global options), if any."""
    pre = argparse.ArgumentParser(add_help=False, formatter_class=_Formatter)
    _global_options(pre, None)
    pre.add_argument("command", nargs="?")
    known, _ = pre.parse_known_args(argv)
    return known.command


def _module(command: str) -> ModuleType:
    return importlib.import_module(f"mailgate.cli.{COMMANDS[command][0]}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s own arguments are added (its module is imported)."""
    p = argparse.ArgumentParser(
        prog="mailgate", description=DESCRIPTION, formatter_class=_Formatter
    )
    _global_options(p, default_config_path())
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_, help_line) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_line, formatter_class=_Formatter)
        if name == command:
            _module(name).add_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _named_command(argv)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    return int(_module(args.command).main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
