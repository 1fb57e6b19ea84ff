"""`mailgate check-config`: every file validated, every template a queue would use
rendered in the sandbox, the queue keys asked of gpg, and with `--connect` every IMAP
mailbox logged in to. Writes nothing (the HMAC secret included)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mailgate.config import hmac_secret
from mailgate.config import load as config_load
from mailgate.config.errors import ConfigError
from mailgate.config.model import Config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--connect", action="store_true", help="also log in to every IMAP mailbox and the relay"
    )


def _report(problems: list[str]) -> int:
    for problem in problems:
        print(f"error: {problem}")
    print(f"{len(problems)} problem(s) found")
    return 1


def _removed_queues(cfg: Config) -> list[str]:
    """Queues removed under open tickets, read from an existing database without migrating
    or writing anything (a fresh install has no tickets to lose)."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from mailgate.store.queue_lifecycle import config_problems

    url = make_url(cfg.database_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
        return []
    db = create_engine(url)
    try:
        with db.connect() as conn:
            return config_problems(conn, cfg) if inspect(conn).has_table("tickets") else []
    except SQLAlchemyError as e:
        reason = (str(getattr(e, "orig", None) or e).strip().splitlines() or ["?"])[0]
        print(f"warning: database: cannot check for removed queues: {reason}")
        return []
    finally:
        db.dispose()


def _summary(cfg: Config) -> None:
    print(f"{cfg.path}: ok")
    for q in cfg.queues:
        print(f"  queue {q.name}: {', '.join(q.addresses)} (tag {q.tag_for(1).replace('1', 'N')})")
    print(f"  {len(cfg.agents)} agent(s); database {cfg.database_url}; spool {cfg.spool_dir}")


def main(args: argparse.Namespace) -> int:
    try:
        cfg = config_load.load(args.config)
    except ConfigError as e:
        return _report(e.problems)
    from mailgate.outgoing.template_checks import template_problems

    for warning in cfg.warnings:
        print(f"warning: {warning}")
    problems = template_problems(cfg)  # what would otherwise shunt mail at run time
    problems += _removed_queues(cfg)
    if problems:
        return _report(problems)
    try:
        secret = hmac_secret.describe(cfg)
    except ConfigError as e:
        return _report(e.problems)
    _summary(cfg)
    print(f"  HMAC secret: {secret}")
    from mailgate.pgp.checks import pgp_problems

    key_problems = pgp_problems(cfg)  # the queue keys are in their homes
    for problem in key_problems:
        print(f"error: {problem}")
    if key_problems:
        return 1
    if args.connect:
        from mailgate.pollers.imap.check import check_mailboxes

        failures = 0
        for c in check_mailboxes(cfg):
            print(f"  imap {c.queue} {c.mailbox}: {'ok' if c.ok else 'FAILED'} {c.detail}")
            failures += not c.ok
        from mailgate.outgoing.relay_check import check_relay

        relay = check_relay(cfg)
        if relay is not None:
            print(f"  relay {'ok' if relay[0] else 'FAILED'} {relay[1]}")
            failures += not relay[0]
        if failures:
            return 1
    return 0
