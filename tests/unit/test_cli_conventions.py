"""The command line's conventions (issue 14): help lines and an example everywhere,
--version, --json on every listing, tables that never cut, unknown values are errors,
`make run` installs only what running needs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailgate.cli import parser as cli_parser
from mailgate.cli.commands import COMMANDS
from tests import harness

REPO = Path(__file__).resolve().parents[2]
LISTINGS = ("tickets list", "shunt list", "outbox list", "attachments list", "keys list")


def _walk(p: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                yield from _walk(sp, f"{path} {name}".strip())


def every_parser() -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for command in COMMANDS:
        for path, p in _walk(cli_parser.build_parser(command), ""):
            if path == "" or path.split()[0] == command:
                found[path] = p
    return found


def mailgate(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [str(Path(sys.prefix) / "bin" / "mailgate")]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}
    )


def test_every_command_and_option_has_a_help_line_and_every_command_an_example() -> None:
    missing = []
    for path, p in every_parser().items():
        if not (p.epilog or "").startswith("example"):
            missing.append(f"mailgate {path}: no example")
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in a._choices_actions}
                missing += [
                    f"mailgate {path} {n}: no help line" for n in a.choices if not helps.get(n)
                ]
            elif not a.help:
                missing.append(f"mailgate {path}: {a.option_strings or a.dest}: no help line")
    assert missing == []
    assert len(every_parser()) > len(COMMANDS)  # the subcommands were walked too


@pytest.mark.parametrize("path", ["tickets list", "shunt retry", "ingest"])
def test_help_opens_with_what_the_command_does_and_ends_with_an_example(path: str) -> None:
    out = mailgate(*path.split(), "--help")
    assert out.returncode == 0
    paragraphs = out.stdout.split("\n\n")
    assert paragraphs[0].startswith("usage: mailgate")
    first = paragraphs[1]  # the help line, not a module's docstring
    assert first.endswith(".") and "`" not in first and "\n" not in first.strip()
    assert paragraphs[-1].startswith("example") and "mailgate " in paragraphs[-1]


def test_version() -> None:
    from importlib.metadata import version

    out = mailgate("--version")
    assert (out.returncode, out.stdout.strip()) == (0, f"mailgate {version('mailgate')}")


def test_every_listing_has_json() -> None:
    parsers = every_parser()
    for path in LISTINGS:
        assert "--json" in parsers[path]._option_string_actions, path


def test_unknown_option_values_are_errors_naming_the_valid_ones(tmp_path: Path) -> None:
    path = harness.write_config(tmp_path)
    out = mailgate("tickets", "list", "--status", "bogus", config=path)
    assert out.returncode == 2 and "invalid choice: 'bogus'" in out.stderr
    assert "'open'" in out.stderr and "'closed'" in out.stderr and out.stdout == ""
    out = mailgate("tickets", "list", "--queue", "nosuch", config=path)
    assert out.returncode == 2 and out.stdout == ""
    assert "--queue: unknown value 'nosuch' (choose from billing, sales, support)" in out.stderr


def test_tables_never_cut_reasons_or_addresses_and_json_has_them_whole(tmp_path: Path) -> None:
    from mailgate.spool import Envelope, Spool

    path = harness.write_config(tmp_path)
    cfg = harness.load(path)
    spool = Spool(cfg.spool_dir)
    reason = "ValueError: " + " ".join(f"word{i}" for i in range(40)) + " the-end-of-the-reason"
    sender = "a.very.long.customer.address.that.goes.on@subdomain.customers.example.com"
    name = spool.put(b"Subject: x\r\n\r\nbody\r\n", Envelope(source="smtp", mail_from=sender))
    (entry,) = spool.claim(1)
    spool.shunt_now(entry, "parse", reason)
    out = mailgate("shunt", "list", config=path)  # a pipe, not a terminal: full width
    assert out.returncode == 0
    assert reason in out.stdout and name in out.stdout
    (row,) = json.loads(mailgate("shunt", "list", "--json", config=path).stdout)
    assert (row["name"], row["reason"], row["mail_from"], row["stage"]) == (
        name,
        reason,
        sender,
        "parse",
    )

    engine, _spool, worker = harness.offline(cfg)
    title = "A subject line long enough that an eighty column table would have to cut it short"
    envelope = Envelope(source="smtp", mail_from=sender, rcpt_tos=("support@example.test",))
    spool.put(harness.message(sender=sender, subject=title), envelope)
    worker.drain()
    engine.dispose()
    listing = mailgate("tickets", "list", config=path).stdout
    assert sender in listing and title in listing
    (ticket,) = json.loads(mailgate("tickets", "list", "--json", config=path).stdout)
    assert (ticket["requester"], ticket["title"], ticket["queues"]) == (sender, title, ["support"])


def test_on_a_terminal_long_cells_wrap_instead_of_being_cut() -> None:
    from rich.console import Console

    from mailgate.cli.output import print_table, table

    reason = "x" * 150 + "-end"
    t = table("name", "reason")
    t.add_row("n1", reason)
    screen = Console(width=60, force_terminal=True, record=True, color_system=None)
    print_table(t, screen)
    text = screen.export_text()
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "".join(c for c in text if c in "x-end").count("x") == 150 and "-end" in text
    assert "…" not in text


def test_make_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    run = subprocess.run(
        ["make", "-n", "run", f"VENV={tmp_path / 'venv'}"], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    installs = [line for line in run.stdout.splitlines() if "pip install" in line and "-e" in line]
    assert installs and all("[test]" not in line for line in installs), run.stdout
    test = subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path / 'venv'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ".[test]" in test.stdout
