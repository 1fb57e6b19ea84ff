"""An example for every command and subcommand: the epilog of its `--help`. Stdlib only.

Keyed by the command's words after `mailgate`; `tests/unit/test_cli_conventions.py` fails
for a command or subcommand without one, so a new command brings its example here.
"""

from __future__ import annotations

CONFIG = "--config /etc/mailgate/mailgate.toml"

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": ("mailgate check-config", "mailgate run", "mailgate tickets list --status open"),
    "run": (f"mailgate {CONFIG} run",),
    "ingest": (
        f"mailgate {CONFIG} ingest --sender carla@example.com "
        "--recipient support@example.com < message.eml",
    ),
    "check-config": ("mailgate check-config", "mailgate check-config --connect"),
    "process": ("mailgate process",),
    "tickets": ("mailgate tickets list --status open --queue support", "mailgate tickets show 42"),
    "tickets list": (
        "mailgate tickets list --status open --queue support",
        "mailgate tickets list --json --limit 500",
    ),
    "tickets search": (
        "mailgate tickets search alice@example.com",
        "mailgate tickets search --queue support --status open --text refund",
        "mailgate tickets search --requester @example.com --close --dry-run",
    ),
    "tickets show": ("mailgate tickets show 42", "mailgate tickets show 42 --secrets"),
    "attachments": ("mailgate attachments list 42", "mailgate attachments get 7 -o invoice.pdf"),
    "attachments list": ("mailgate attachments list 42", "mailgate attachments list 42 --json"),
    "attachments get": ("mailgate attachments get 7 -o invoice.pdf",),
    "shunt": ("mailgate shunt list", "mailgate shunt retry all"),
    "shunt list": ("mailgate shunt list", "mailgate shunt list --json"),
    "shunt show": ("mailgate shunt show 01796128432455492543-22934-364628d28f56",),
    "shunt retry": ("mailgate shunt retry all",),
    "shunt discard": ("mailgate shunt discard 01796128432455492543-22934-364628d28f56",),
    "outbox": ("mailgate outbox list --held", "mailgate outbox release all"),
    "outbox list": ("mailgate outbox list --held", "mailgate outbox list --json"),
    "outbox release": ("mailgate outbox release 12", "mailgate outbox release all"),
    "outbox drop": ("mailgate outbox drop 12",),
    "agents": ("mailgate agents address alice support",),
    "agents address": ("mailgate agents address alice", "mailgate agents address alice support"),
    "stats": ("mailgate stats", "mailgate stats --tz Europe/Berlin --json"),
    "import": (
        "mailgate import mbox old-support.mbox --queue support",
        "mailgate import maildir ~/Maildir/.billing --queue billing --ack",
    ),
    "addresses": ("mailgate addresses list", "mailgate addresses clear carla@example.com"),
    "addresses list": ("mailgate addresses list", "mailgate addresses list --json"),
    "addresses clear": ("mailgate addresses clear carla@example.com",),
    "junk": ("mailgate junk list", "mailgate junk release 12"),
    "junk list": ("mailgate junk list", "mailgate junk list --all"),
    "junk show": ("mailgate junk show 12",),
    "junk release": ("mailgate junk release 12",),
    "rules": ("mailgate rules test message.eml",),
    "rules test": (
        "mailgate rules test message.eml",
        "mailgate rules test --queue support - < message.eml",
    ),
    "queues": ("mailgate queues list", "mailgate queues retire sales --move-to support"),
    "queues list": ("mailgate queues list",),
    "queues retire": (
        "mailgate queues retire sales --move-to support",
        "mailgate queues retire sales --close",
    ),
    "report": (
        "mailgate report --month 2026-11",
        "mailgate report --month 2026-11 --html report-2026-11.html",
        "mailgate report --month 2026-11 --json",
    ),
    "keys": ("mailgate keys create support", "mailgate keys list support"),
    "keys create": ("mailgate keys create support --expire 2y",),
    "keys import": ("mailgate keys import support customer.asc --expect-email carla@example.com",),
    "keys export": ("mailgate keys export support -o support-public.asc",),
    "keys list": ("mailgate keys list support", "mailgate keys list support --json"),
    "oauth2": ("mailgate oauth2 authorize support",),
    "oauth2 authorize": (
        "mailgate oauth2 authorize support",
        "mailgate oauth2 authorize --relay --paste",
    ),
}


def epilog(path: str) -> str | None:
    """The `--help` epilog of `mailgate PATH`; None when it has no example yet."""
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    return "example" + ("s" if len(lines) > 1 else "") + ":\n" + "\n".join(f"  {x}" for x in lines)
