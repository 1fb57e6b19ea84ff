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
from mailgate.cli.examples import epilog


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's own (the epilog's example lines kept as they are), with the terminal width
    found without `shutil` (argparse imports it for every parser it builds: a few ms on each
    message the MTA pipes in)."""

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
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="override mailgate.log_level for this command",
    )


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
        prog="mailgate", description=DESCRIPTION, formatter_class=_Formatter, epilog=epilog("")
    )
    _global_options(p, default_config_path())
    p.add_argument("--version", action="version", version=f"mailgate {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_line) in COMMANDS.items():
        sp = sub.add_parser(
            name,
            help=help_line,
            description=help_line[:1].upper() + help_line[1:] + ".",
            formatter_class=_Formatter,
            epilog=epilog(name),
        )
        if name == command:
            module_of(name).add_arguments(sp)
            _describe(sp, name)
    return p


def _describe(p: argparse.ArgumentParser, path: str) -> None:
    """Each subcommand's `--help`: its help line first (never a docstring), its example last."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in action._choices_actions}
            for name, sp in action.choices.items():
                sp.formatter_class = _Formatter
                if sp.description is None and helps.get(name):
                    sp.description = helps[name][:1].upper() + helps[name][1:] + "."
                if sp.epilog is None:
                    sp.epilog = epilog(f"{path} {name}")
                _describe(sp, f"{path} {name}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mailgate")
    except PackageNotFoundError:  # a source tree without an install
        return "unknown"
