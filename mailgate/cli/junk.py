"""`mailgate junk list [--all] | show ID | release ID`: the quarantine of mail no person wrote.

`release` puts the message through the normal path (spooled again; the pipeline lets a
released message past its bounce, auto-reply and spam checks).
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from mailgate.cli.output import add_json_flag, print_json, print_table, table
from mailgate.cli.startup import engine, load_config
from mailgate.runtime import utcnow
from mailgate.spool import Envelope, Spool
from mailgate.store.junk import get_junk, list_junk, mark_released

console = Console(highlight=False, soft_wrap=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="quarantined mail, newest first")
    ls.add_argument("--all", action="store_true", help="released mail too")
    add_json_flag(ls)
    for action, what in (("show", "the reason and the message"), ("release", "process it")):
        sp = sub.add_parser(action, help=what)
        sp.add_argument("id", type=int, help="junk id from `junk list`")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    db = engine(cfg)
    if args.action == "list":
        with db.connect() as conn:
            rows = list_junk(conn, include_released=args.all)
        if args.json:
            print_json({k: v for k, v in r._asdict().items() if k != "raw"} for r in rows)
            return 0
        t = table("id", "category", "received", "from", "subject", "released", "reason")
        for r in rows:
            released = f"{r.released_at:%Y-%m-%d %H:%M}" if r.released_at else ""
            received = f"{r.created_at:%Y-%m-%d %H:%M}"
            reason = r.reason.splitlines()[0] if r.reason else ""
            t.add_row(str(r.id), r.category, received, r.from_addr, r.subject, released, reason)
        print_table(t)
        print(f"{len(rows)} message(s)")
        return 0
    with db.connect() as conn:
        row = get_junk(conn, args.id)
    if row is None:
        print(f"mailgate junk: no junk message {args.id}", file=sys.stderr)
        return 1
    if args.action == "show":
        console.print(
            f"junk {row.id} ({row.category}) from <{row.from_addr}> queues "
            f"{', '.join(row.queues)} at {row.created_at:%Y-%m-%d %H:%M:%S}",
            markup=False,
        )
        console.print(f"subject: {row.subject}\nmessage-id: {row.message_id}", markup=False)
        console.rule("why it is here")
        console.print(row.reason, markup=False)
        console.rule(f"first bytes of the message ({len(row.raw)} bytes)")
        console.print(row.raw[:2000].decode("utf-8", "replace"), markup=False)
        return 0
    # marked first, spooled after: a failed spool write leaves it released but unprocessed,
    # and `junk release` again spools it again (processing twice is a no-op)
    with db.begin() as conn:
        mark_released(conn, row.id, utcnow())
    envelope = Envelope.from_json(json.dumps(row.envelope).encode())
    name = Spool(cfg.spool_dir).put(row.raw, envelope._replace(attempts=0, failures=()))
    print(f"junk {row.id} released: spooled as {name}; the daemon (or `mailgate process`) takes it")
    return 0
