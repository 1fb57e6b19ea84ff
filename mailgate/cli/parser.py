"""The argparse side of the command line: the parser of every command, built lazily.

Each command group is a module of this package with `add_arguments(parser)` and
`main(args) -> int`; only the module of the command that runs is imported.
"""

from __future__ import annotations

import argparse
import importlib
import os
from types import ModuleType

from mailgate.cli.commands import COMMANDS, DESCRIPTION, default_config_path


class _Formatter(argparse.HelpFormatter):
    """argparse's own, with the terminal width found without `shutil` (argparse imports it
    for every parser it builds: a few ms on each message the MTA pipes in)."""

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
        except (ValueError, OSError):
            columns = 80
        super().__init__(prog, width=columns - 2)


def _global_options(p: argparse.ArgumentParser, config_default: str | None) -> None:
    p.add_argument(
        "-c",
        "--config",
        default=config_default,
        help="path to mailgate.toml (default: $MAILGATE_CONFIG, "
        "./config/mailgate.toml, /etc/mailgate/mailgate.toml)",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def named_command(argv: list[str]) -> str | None:
    """The command `argv` names (the first word after the global options), if any."""
    pre = argparse.ArgumentParser(add_help=False, formatter_class=_Formatter)
    _global_options(pre, None)
    pre.add_argument("command", nargs="?")
    known, _ = pre.parse_known_args(argv)
    return known.command


def module_of(command: str) -> ModuleType:
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
            module_of(name).add_arguments(sp)
    return p
