"""The commands mailgate has, and where their configuration is looked for. Stdlib only."""

from __future__ import annotations

import os
from pathlib import Path

DESCRIPTION = "The mail side of a helpdesk: intake, tickets, auto-responses, agent commands."
# command -> (module of mailgate.cli, help line)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the daemon"),
    "ingest": ("ingest", "read one message on stdin into the spool (MTA pipe)"),
    "check-config": ("check_config", "validate the configuration"),
    "process": ("process", "process the spool once and send due mail, then exit"),
    "tickets": ("tickets", "list, show or search tickets; mass actions on a search"),
    "attachments": ("attachments", "list or get the attachments of a ticket's mail"),
    "shunt": ("shunt", "messages that could not be processed"),
    "outbox": ("outbox", "mail held back (governor caps, no SMTPUTF8): list, release, drop"),
    "agents": ("agents", "agent helpers"),
    "stats": ("stats", "ticket statistics per queue; counts of tickets, spool, shunt, outbox"),
    "report": ("report", "the monthly KPI report: per agent and queue, trends, charts"),
    "import": ("import_mail", "an existing mbox or Maildir into a queue, through the spool"),
    "keys": ("keys", "PGP keys of a queue: create, import, export, list"),
    "oauth2": ("oauth2", "OAuth2 for IMAP and the relay: authorize once"),
    "rules": ("rules", "routing rules: test what they would do with a message"),
    "queues": ("queues", "queues and their open tickets; retire a removed queue"),
    "addresses": ("addresses", "customer addresses that bounced: list, clear"),
    "junk": ("junk", "quarantined bounces, auto-replies and spam: list, show, release"),
}


def default_config_path() -> str:
    env = os.environ.get("MAILGATE_CONFIG")
    if env:
        return env
    local = Path("config/mailgate.toml")
    return str(local) if local.exists() else "/etc/mailgate/mailgate.toml"
