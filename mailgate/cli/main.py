"""Command line: parses arguments and calls into the package; no logic of its own."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from mailgate.cli import keys as keys_cli
from mailgate.config import load as config_mod
from mailgate.config.load import Config, ConfigError

EX_OK, EX_USAGE, EX_DATAERR, EX_SOFTWARE, EX_TEMPFAIL, EX_CONFIG = 0, 64, 65, 70, 75, 78


def default_config_path() -> str:
    env = os.environ.get("MAILGATE_CONFIG")
    if env:
        return env
    local = Path("config/mailgate.toml")
    return str(local) if local.exists() else "/etc/mailgate/mailgate.toml"


def load_config(path: str) -> Config:
    try:
        return config_mod.load(path)
    except ConfigError as e:
        for problem in e.problems:
            print(f"config error: {problem}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from e


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet = max(logging.WARNING, logging.getLogger().level)
    for chatty in ("alembic", "mail.log", "gnupg"):  # protocol-level chatter, not our story
        logging.getLogger(chatty).setLevel(quiet)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    _setup_logging(args.log_level or cfg.main.log_level)
    from mailgate import app
    from mailgate.spool import SpoolLocked

    try:
        app.run(cfg)
    except SpoolLocked as e:
        print(f"mailgate: {e}", file=sys.stderr)
        return EX_TEMPFAIL
    return EX_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    """MTA pipe: exit 0 only after the spool write; 75 on temporary failure; 65 on bad input."""
    try:
        cfg = config_mod.load(args.config)
    except ConfigError as e:
        for problem in e.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EX_TEMPFAIL  # the admin can fix the config; the MTA keeps the mail meanwhile
    except Exception as e:  # noqa: BLE001 - an MTA pipe must always get a defined exit code
        print(f"mailgate ingest: {e}", file=sys.stderr)
        return EX_TEMPFAIL
    if args.queue and cfg.queue(args.queue) is None:
        print(f"mailgate ingest: no queue named {args.queue!r}", file=sys.stderr)
        return EX_TEMPFAIL
    try:
        raw = sys.stdin.buffer.read(cfg.listener.max_message_bytes + 1)
    except OSError as e:
        print(f"mailgate ingest: reading stdin: {e}", file=sys.stderr)
        return EX_TEMPFAIL
    if not raw.strip():
        print("mailgate ingest: empty message", file=sys.stderr)
        return EX_DATAERR
    if len(raw) > cfg.listener.max_message_bytes:
        print(
            f"mailgate ingest: message larger than {cfg.listener.max_message_bytes} bytes",
            file=sys.stderr,
        )
        return EX_DATAERR
    from mailgate.spool import Envelope, Spool

    env = Envelope(
        source="pipe",
        mail_from=args.sender or "",
        rcpt_tos=tuple(args.recipient or ()),
        queue=args.queue or "",
    )
    try:
        name = Spool(cfg.spool_dir).put(raw, env)
    except Exception as e:  # noqa: BLE001 - not durable: tell the MTA to retry
        print(f"mailgate ingest: spool write failed: {e}", file=sys.stderr)
        return EX_TEMPFAIL
    if args.verbose:
        print(f"spooled {name}")
    return EX_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        cfg = config_mod.load(args.config)
    except ConfigError as e:
        for problem in e.problems:
            print(f"error: {problem}")
        print(f"{len(e.problems)} problem(s) found")
        return 1
    print(f"{cfg.path}: ok")
    for q in cfg.queues:
        print(f"  queue {q.name}: {', '.join(q.addresses)} (tag {q.tag_for(1).replace('1', 'N')})")
    print(f"  {len(cfg.agents)} agent(s); database {cfg.database_url}; spool {cfg.spool_dir}")
    from mailgate.pgp.stage import pgp_problems

    key_problems = pgp_problems(cfg, check_keys=True)  # the queue keys are in their homes
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
        if failures:
            return 1
    return 0


def _engine(cfg: Config):  # type: ignore[no-untyped-def]
    from mailgate.db import engine as db

    return db.connect(cfg.database_url)


def cmd_process(args: argparse.Namespace) -> int:
    """Process whatever is in the spool now, then exit (the daemon does this continuously)."""
    cfg = load_config(args.config)
    _setup_logging(args.log_level or cfg.main.log_level)
    from mailgate.outgoing.sender import Sender
    from mailgate.pipeline.steps import Pipeline
    from mailgate.pipeline.worker import Worker
    from mailgate.spool import Spool

    spool = Spool(cfg.spool_dir)
    spool.lock()
    spool.recover()
    engine = _engine(cfg)
    r = Worker(cfg, engine, spool, Pipeline(cfg)).drain()
    sent, deferred, failed = Sender(cfg, engine).send_due(limit=10_000)
    print(
        f"stored {r.stored}, duplicates {r.duplicates}, retried {r.retried}, "
        f"shunted {r.shunted}; sent {sent}, deferred {deferred}, failed {failed}"
    )
    return 0


def cmd_tickets(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    from mailgate.cli import views

    engine = _engine(cfg)
    if args.action == "list":
        views.print_ticket_list(engine, queue=args.queue, status=args.status, limit=args.limit)
        return 0
    return views.print_ticket(engine, args.id, show_secrets=getattr(args, "secrets", False))


def cmd_shunt(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    from mailgate.cli import views
    from mailgate.spool import Spool

    spool = Spool(cfg.spool_dir)
    try:
        if args.action == "list":
            views.print_shunt(spool)
        elif args.action == "show":
            views.print_shunt_entry(spool, args.name)
        elif args.action == "retry":
            names = [e.name for e in spool.shunted()] if args.name == "all" else [args.name]
            for n in names:
                spool.shunt_retry(n)
            print(
                f"{len(names)} message(s) back in the spool; the daemon (or `mailgate "
                "process`) will take them"
            )
        elif args.action == "discard":
            spool.shunt_discard(args.name)
            print(f"discarded {args.name}")
    except FileNotFoundError as e:
        print(f"mailgate shunt: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    from mailgate.cli import views
    from mailgate.spool import Spool

    views.print_stats(_engine(cfg), Spool(cfg.spool_dir))
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    """Print an agent's command address per queue: where `#new`, `#list`, `#help` go."""
    cfg = load_config(args.config)
    from mailgate.agents.tokens import command_address

    agent = cfg.agent(args.name)
    if agent is None:
        print(f"mailgate agents: no agent named {args.name!r} in the agents file", file=sys.stderr)
        return 1
    queues = [args.queue] if args.queue else (agent.queues or [q.name for q in cfg.queues])
    for name in queues:
        q = cfg.queue(name)
        if q is None:
            print(f"mailgate agents: no queue named {name!r}", file=sys.stderr)
            return 1
        print(f"{name}: {command_address(cfg.secret, agent.name, q.address)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mailgate", description=__doc__)
    p.add_argument(
        "-c",
        "--config",
        default=default_config_path(),
        help="path to mailgate.toml (default: $MAILGATE_CONFIG, "
        "./config/mailgate.toml, /etc/mailgate/mailgate.toml)",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="run the daemon").set_defaults(func=cmd_run)

    ing = sub.add_parser("ingest", help="read one message on stdin into the spool (MTA pipe)")
    ing.add_argument("--queue", help="queue name (else taken from recipients/headers)")
    ing.add_argument("--sender", help="envelope sender, e.g. Postfix ${sender}")
    ing.add_argument("--recipient", action="append", help="envelope recipient (repeatable)")
    ing.add_argument("-v", "--verbose", action="store_true")
    ing.set_defaults(func=cmd_ingest)

    cc = sub.add_parser("check-config", help="validate the configuration")
    cc.add_argument("--connect", action="store_true", help="also log in to every IMAP mailbox")
    cc.set_defaults(func=cmd_check_config)

    sub.add_parser(
        "process", help="process the spool once and send due mail, then exit"
    ).set_defaults(func=cmd_process)

    t = sub.add_parser("tickets", help="list or show tickets")
    tsub = t.add_subparsers(dest="action", required=True)
    tl = tsub.add_parser("list")
    tl.add_argument("--queue")
    tl.add_argument("--status", help="a status, or 'open' for every not-closed ticket")
    tl.add_argument("--limit", type=int, default=50)
    ts = tsub.add_parser("show")
    ts.add_argument("id", type=int)
    ts.add_argument("--secrets", action="store_true", help="show decrypted PGP content (audited)")
    t.set_defaults(func=cmd_tickets)

    s = sub.add_parser("shunt", help="messages that could not be processed")
    ssub = s.add_subparsers(dest="action", required=True)
    ssub.add_parser("list")
    for action in ("show", "retry", "discard"):
        sp = ssub.add_parser(action)
        sp.add_argument(
            "name", help="entry name from `shunt list`" + (" or 'all'" if action == "retry" else "")
        )
    s.set_defaults(func=cmd_shunt)

    ag = sub.add_parser("agents", help="agent helpers")
    agsub = ag.add_subparsers(dest="action", required=True)
    addr = agsub.add_parser("address", help="an agent's command address (keep it private)")
    addr.add_argument("name")
    addr.add_argument("queue", nargs="?")
    ag.set_defaults(func=cmd_agents)

    sub.add_parser("stats", help="counts of tickets, spool, shunt and outbox").set_defaults(
        func=cmd_stats
    )
    keys_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
