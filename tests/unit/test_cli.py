"""The command line: dispatch imports only the command's module; `shunt show` output."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mailgate.cli import shunt
from mailgate.cli.commands import COMMANDS
from mailgate.cli.ingest import fast_arguments
from mailgate.cli.parser import build_parser, named_command
from mailgate.spool import Envelope, Spool


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["ingest", "--queue", "support"], "ingest"),
        (["-c", "run", "check-config"], "check-config"),  # a config file named like a command
        (["--config=x.toml", "--log-level", "debug", "keys", "list", "q"], "keys"),
        (["--help"], None),
    ],
)
def test_the_command_is_found_before_its_module_is_imported(argv, command):
    assert named_command(argv) == command


def test_every_command_has_a_module_with_its_arguments():
    for name in COMMANDS:
        args = {"keys": ["keys", "list", "q"], "tickets": ["tickets", "list"]}.get(name, [name])
        args += {
            "shunt": ["list"],
            "agents": ["address", "alice"],
            "oauth2": ["authorize", "q"],
            "attachments": ["list", "1"],
            "outbox": ["list"],
            "report": ["--month", "2026-11"],
            "rules": ["test", "message.eml"],
            "queues": ["list"],
            "addresses": ["list"],
            "junk": ["list"],
            "import": ["mbox", "old.mbox", "--queue", "q"],
        }.get(name, [])
        assert build_parser(name).parse_args(args).command == name


def test_distinct_failures_keep_the_first_order_and_count_attempts():
    failures = [
        {"stage": "parse", "reason": "Traceback A"},
        {"stage": "parse", "reason": "Traceback A"},
        {"stage": "store", "reason": "Traceback B"},
        {"stage": "parse", "reason": "Traceback A"},
    ]
    assert shunt.distinct_failures(failures) == [
        (("parse", "Traceback A"), [1, 2, 4]),
        (("store", "Traceback B"), [3]),
    ]
    assert shunt.distinct_failures([]) == []


def test_shunt_show_prints_a_repeated_traceback_once(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.put(b"Subject: x\r\n\r\nbody\r\n", Envelope(source="pipe"))
    trace = "Traceback (most recent call last):\n  [bracketed] ValueError: boom"
    for _ in range(3):
        (entry,) = spool.claim(1)
        spool.fail(entry, "parse", trace, max_attempts=3)
    (shunted,) = spool.shunted()
    out = io.StringIO()
    shunt.console.file = out
    try:
        shunt.print_shunt_entry(spool, shunted.name)
    finally:
        shunt.console.file = None  # type: ignore[assignment]
    text = out.getvalue()
    assert text.count("ValueError: boom") == 1, text
    assert "[bracketed]" in text  # printed as text, not read as rich markup
    assert "failed at parse, attempts 1, 2, 3" in text and "attempts 3" in text


def test_an_unknown_ticket_status_is_an_error_not_an_empty_table(capsys):
    parser = build_parser("tickets")
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["tickets", "list", "--status", "bogus"])
    assert e.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err
    assert parser.parse_args(["tickets", "list", "--status", "on-hold"]).status == "on-hold"


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest"],
        ["-c", "/etc/mg.toml", "ingest", "--queue", "support"],
        ["--config=/etc/mg.toml", "--log-level", "debug", "ingest", "--sender="],
        ["ingest", "--sender", "", "--recipient", "a@x.test", "--recipient=b@x.test", "-v"],
        ["ingest", "--queue=billing", "--verbose", "--sender", "bounce@x.test"],
    ],
)
def test_the_fast_ingest_arguments_are_what_argparse_gives(argv):
    fast = fast_arguments(argv)
    assert fast is not None
    assert vars(fast) == vars(build_parser("ingest").parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["tickets", "list"],
        ["ingest", "--help"],
        ["ingest", "--que", "support"],  # argparse's abbreviation: left to argparse
        ["ingest", "--queue"],  # a value missing: argparse's error
        ["ingest", "--sender", "-x"],  # looks like an option
        ["ingest", "--config", "x.toml"],  # a global option after the command: an error
        ["--log-level", "loud", "ingest"],
        ["ingest", "--verbose=yes"],
        ["ingest", "extra"],
    ],
)
def test_anything_unusual_goes_to_argparse(argv):
    assert fast_arguments(argv) is None
