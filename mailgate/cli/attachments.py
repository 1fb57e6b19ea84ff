"""`mailgate attachments list TICKET | get ID [-o FILE]`: the files of a ticket's mail,
for admins (agents ask by mail: `#attachment N`). Decrypted PGP attachments are
agent-only: `get` refuses them ("PGP plaintext is agent-only"; `tickets show --secrets`
is the audited way)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailgate.agents import attachments
from mailgate.cli.output import add_json_flag, print_json
from mailgate.cli.startup import engine, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    al = sub.add_parser("list", help="the attachments of a ticket's articles")
    al.add_argument("ticket", type=int, help="ticket number")
    add_json_flag(al)
    ag = sub.add_parser("get", help="one attachment's bytes, to a file or standard output")
    ag.add_argument("id", type=int, help="attachment id from `attachments list`")
    ag.add_argument("-o", "--output", help="file to write (default: standard output)")


def main(args: argparse.Namespace) -> int:
    db = engine(load_config(args.config))
    with db.connect() as conn:
        if args.action == "list":
            items = attachments.of_ticket(conn, args.ticket)
            if args.json:
                print_json(items)
                return 0
            if not items:
                print(f"ticket #{args.ticket}: no attachments", file=sys.stderr)
                return 0
            print("id\tarticle\tname\ttype\tsize\tinline\tcontent-id\tpgp")
            for a in items:
                cells = (
                    a.id,
                    a.article_id,
                    a.filename,
                    a.content_type,
                    a.size,
                    "inline" if a.inline else "-",
                    a.content_id or "-",
                    "agent-only" if a.agent_only else "-",
                )
                print("\t".join(str(c) for c in cells))
            return 0
        found = attachments.by_id(conn, args.id)
        if found is None:
            print(f"mailgate: no attachment {args.id}", file=sys.stderr)
            return 1
        if found.agent_only:
            print(
                f"mailgate: attachment {args.id} is decrypted PGP content (agent-only): "
                f"see `mailgate tickets show {found.ticket_id} --secrets`",
                file=sys.stderr,
            )
            return 1
        data = attachments.data(conn, found)
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"{args.output}: {found.filename}, {len(data)} bytes", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0
