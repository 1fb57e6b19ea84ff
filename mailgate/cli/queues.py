"""`mailgate queues list | retire NAME --move-to OTHER | --close`: the queues and their
open tickets, and retiring a queue whose file was (or will be) removed."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from mailgate.cli.startup import engine, load_config, operator_name
from mailgate.config.model import Config
from mailgate.store.queue_lifecycle import has_tickets, open_tickets_by_queue, retire


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser(
        "list",
        help="every queue with its open tickets, and removed queues that still have some",
        epilog="example: mailgate queues list",
    )
    r = sub.add_parser(
        "retire",
        help="move a removed queue's tickets to another queue, or close them (audited)",
        epilog="example: mailgate queues retire sales --move-to support",
    )
    r.add_argument("name", help="the queue to retire")
    how = r.add_mutually_exclusive_group(required=True)
    how.add_argument("--move-to", metavar="OTHER", help="move all its tickets to this queue")
    how.add_argument("--close", action="store_true", help="close its open tickets")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if args.action == "list":
        return _list(cfg)
    return _retire(cfg, args.name, args.move_to)


def _list(cfg: Config) -> int:
    with engine(cfg).connect() as conn:
        counts = open_tickets_by_queue(conn)
    for q in cfg.queues:
        print(f"{q.name:<20} {counts.get(q.name, 0):>6} open  {', '.join(q.addresses)}")
    for name in sorted(set(counts) - {q.name for q in cfg.queues}):
        print(f"{name:<20} {counts[name]:>6} open  REMOVED: mailgate queues retire {name} ...")
    return 0


def _retire(cfg: Config, name: str, move_to: str | None) -> int:
    others = [q.name for q in cfg.queues if q.name != name]
    if not others:
        print(f"queue {name!r} is the last queue: it cannot be retired")
        return 1
    if move_to is not None and (move_to == name or cfg.queue(move_to) is None):
        print(f"--move-to {move_to}: not a queue of the configuration (one of {', '.join(others)})")
        return 2
    db = engine(cfg)
    with db.begin() as conn:
        if cfg.queue(name) is None and not has_tickets(conn, name):
            print(f"no queue file and no tickets for queue {name!r}: nothing to retire")
            return 1
        serving = [a.name for a in cfg.agents if move_to in a.queues]
        done = retire(
            conn,
            name,
            move_to=move_to,
            keep_assignees=serving,
            actor=operator_name(),
            now=datetime.now(UTC),
        )
    if move_to is not None:
        print(f"queue {name} retired: {done.moved} ticket(s) moved to {move_to}", end="")
    else:
        print(f"queue {name} retired: {done.closed} open ticket(s) closed", end="")
    print(f"; {done.views} ticket(s) of other queues no longer shown in it")
    if cfg.queue(name) is not None:
        print(
            f"its file {cfg.queue(name).source} is still there: remove it, or new mail to it "
            "makes tickets in it again"
        )
    return 0
