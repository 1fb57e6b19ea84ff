"""`mailgate tickets search`: filters, full text and quick search (store/search.py), and
mass actions on the result (store/mass.py): close, assign, move, tag, priority, delete.

A mass action runs on every matching ticket (`--limit` only shortens the listing), needs
at least one filter, prints what it changes (`--dry-run`: only that), and is audited with
who ran it. `--delete` also needs `--yes`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rich.console import Console
from rich.table import Column
from sqlalchemy import Connection, Engine

from mailgate.cli.output import print_table, table
from mailgate.cli.startup import engine, load_config, operator_name
from mailgate.config.model import Config
from mailgate.db.models import TICKET_STATUSES
from mailgate.store import mass
from mailgate.store import search as q

console = Console(highlight=False, soft_wrap=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("quick", nargs="?", help="quick search: a ticket id, an address or title words")
    f = p.add_argument_group("filters (all given must match)")
    f.add_argument("--queue", action="append", default=[], help="visible in this queue (repeat)")
    f.add_argument(
        "--status",
        action="append",
        default=[],
        choices=TICKET_STATUSES,
        help="this status (repeat); 'open' means every status but resolved and closed",
    )
    f.add_argument("--assignee", help="assigned to this agent")
    f.add_argument("--unassigned", action="store_true", help="assigned to nobody")
    f.add_argument("--requester", help="the requester's address, or @domain for a whole domain")
    f.add_argument("--tag", action="append", default=[], help="carries this tag (repeat: all)")
    f.add_argument("--category", help="tickets of this category (#category)")
    f.add_argument("--priority-min", type=int, metavar="N", help="priority at least N")
    f.add_argument("--priority-max", type=int, metavar="N", help="priority at most N")
    for what in ("created", "updated", "closed"):
        f.add_argument(f"--{what}-from", metavar="DATE", help=f"{what} on or after DATE (UTC)")
        f.add_argument(f"--{what}-to", metavar="DATE", help=f"{what} on or before DATE (UTC)")
    f.add_argument("--sla", choices=q.SLA_STATES, help="SLA state (breached: a target missed now)")
    f.add_argument("--text", metavar="WORDS", help="every word in the title or in one article")
    p.add_argument("--limit", type=int, default=50, help="tickets listed (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    m = p.add_argument_group("mass actions (on every matching ticket)")
    one = m.add_mutually_exclusive_group()
    one.add_argument("--close", action="store_true", help="close every matching ticket")
    one.add_argument("--assign", metavar="AGENT", help="assign every matching ticket to AGENT")
    one.add_argument("--move", metavar="QUEUE", help="move every matching ticket to QUEUE")
    one.add_argument(
        "--set-priority",
        type=int,
        metavar="N",
        choices=range(1, 100),
        help="set the priority (1-99) of every matching ticket",
    )
    one.add_argument("--delete", action="store_true", help="remove for good (needs --yes)")
    m.add_argument(
        "--add-tag", action="append", default=[], metavar="TAG", help="add TAG (repeatable)"
    )
    m.add_argument(
        "--remove-tag", action="append", default=[], metavar="TAG", help="remove TAG (repeatable)"
    )
    m.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    m.add_argument("--yes", action="store_true", help="confirm --delete")
    m.add_argument("--actor", help="who runs it, for the audit log (default: your login name)")


class UsageError(Exception):
    pass


def parse_when(value: str | None, end: bool) -> datetime | None:
    """A date (the whole day, UTC) or an ISO date-time; `end`: the bound after it."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time(), UTC)
            return start + timedelta(days=1) if end else start
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise UsageError(f"not a date: {value!r} (YYYY-MM-DD or an ISO date-time)") from e
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def search_filter(args: argparse.Namespace) -> q.SearchFilter:
    base = q.quick_filter(args.quick) if args.quick else q.SearchFilter()
    dates = {
        f"{what}_{side}": parse_when(getattr(args, f"{what}_{side}"), side == "to")
        for what in ("created", "updated", "closed")
        for side in ("from", "to")
    }
    return q.SearchFilter(
        ids=base.ids,
        address=base.address,
        title=base.title,
        queues=tuple(args.queue),
        statuses=tuple(args.status),
        assignee=args.assignee,
        unassigned=args.unassigned,
        requester=args.requester,
        tags=tuple(args.tag),
        category=args.category,
        priority_min=args.priority_min,
        priority_max=args.priority_max,
        sla=args.sla,
        text=args.text,
        **dates,
    )


def mass_action(args: argparse.Namespace, cfg: Config) -> mass.MassAction | None:
    tags = bool(args.add_tag or args.remove_tag)
    chosen = [
        k
        for k, on in (
            ("close", args.close),
            ("assign", args.assign),
            ("move", args.move),
            ("priority", args.set_priority is not None),
            ("delete", args.delete),
            ("tag", tags),
        )
        if on
    ]
    if not chosen:
        if args.dry_run or args.yes:
            raise UsageError("--dry-run and --yes go with a mass action")
        return None
    if len(chosen) > 1:
        raise UsageError("one mass action at a time: " + ", ".join(chosen))
    if args.assign and cfg.agent(args.assign) is None:
        raise UsageError(f"no agent named {args.assign!r} in the configuration")
    if args.move and cfg.queue(args.move) is None:
        raise UsageError(f"no queue named {args.move!r} in the configuration")
    if args.delete and not (args.yes or args.dry_run):
        raise UsageError("--delete removes tickets for good: add --yes (or try --dry-run)")
    return mass.MassAction(
        kind=chosen[0],
        agent=args.assign,
        queue=args.move,
        priority=args.set_priority,
        tag_add=tuple(args.add_tag),
        tag_remove=tuple(args.remove_tag),
    )


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    try:
        f = search_filter(args)
        action = mass_action(args, cfg)
        if action is not None and f.empty:
            raise UsageError("a mass action needs at least one filter (or a quick search)")
    except UsageError as e:
        print(f"mailgate tickets search: {e}", file=sys.stderr)
        return 2
    db = engine(cfg)
    if action is None:
        print_results(db, f, args.limit, args.json)
        return 0
    return run_mass_action(db, f, action, args)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def found(conn: Connection, f: q.SearchFilter, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """How many tickets match, and the first `limit` of them with their queues and tags."""
    query = q.search_query(f, conn.dialect.name, max(limit, 1))  # one row at least: the total
    rows = [dict(r._mapping) for r in conn.execute(query)]
    total = rows[0]["total"] if rows else 0
    rows = rows[: max(limit, 0)]
    for r in rows:
        del r["total"]
    ids = [r["id"] for r in rows]
    queues_sql, tags_sql = q.queues_and_tags(ids)
    queues: dict[int, set[str]] = {}
    tags: dict[int, set[str]] = {}
    for tid, name in conn.execute(queues_sql):
        queues.setdefault(tid, set()).add(name)
    for tid, tag in conn.execute(tags_sql):
        tags.setdefault(tid, set()).add(tag)
    for r in rows:
        r["queues"] = sorted(queues.get(r["id"], {r["queue"]}))
        r["tags"] = sorted(tags.get(r["id"], ()))
    return total, rows


def print_results(db: Engine, f: q.SearchFilter, limit: int, as_json: bool) -> None:
    with db.connect() as conn:
        total, rows = found(conn, f, limit)
    if as_json:
        shown = [{k: _jsonable(v) for k, v in r.items()} for r in rows]
        print(json.dumps({"count": total, "tickets": shown}, ensure_ascii=False, indent=1))
        return
    t = table(
        "id", "pri", "status", "queues", "assignee", "requester", "tags", "title",
        Column("created", no_wrap=True),
        title=f"{total} ticket(s)" + (f", the first {len(rows)}" if total > len(rows) else ""),
    )  # fmt: skip
    for r in rows:
        t.add_row(
            str(r["id"]),
            str(r["priority"]),
            r["status"],
            ",".join(r["queues"]),
            r["assignee"] or "-",
            r["requester_addr"],
            ",".join(r["tags"]),
            r["title"],
            r["created_at"].strftime("%Y-%m-%d %H:%M"),
        )
    print_table(t, console)


def _describe(d: dict[str, Any]) -> str:
    if d.get("delete"):
        return "deleted"
    parts = [f"{k} {v[0] or '-'} -> {v[1] or '-'}" for k, v in d.items() if k != "tags"]
    tags = d.get("tags")
    if tags:
        parts += [f"+{t}" for t in tags["add"]] + [f"-{t}" for t in tags["remove"]]
    return ", ".join(parts)


def run_mass_action(
    db: Engine, f: q.SearchFilter, action: mass.MassAction, args: argparse.Namespace
) -> int:
    now = datetime.now(UTC)
    actor = args.actor or operator_name()
    with db.begin() as conn:
        ids = [i for (i,) in conn.execute(q.ids_query(f, conn.dialect.name))]
        planned = mass.plan(conn, action, ids, now)
        done = {} if args.dry_run else mass.apply(conn, action, planned, actor, now)
    if args.json:
        changes = [
            {"id": row.id, "title": row.title, "changes": d} for row, d in planned
        ]  # fmt: skip
        out = {
            "action": action.kind,
            "dry_run": args.dry_run,
            "matched": len(ids),
            "changes": changes,
            "done": done,
        }
        print(json.dumps(out, ensure_ascii=False, indent=1, default=_jsonable))
        return 0
    verb = "would change" if args.dry_run else "changed"
    t = table(
        "id", "title", "change",
        title=f"{action.kind}: {len(ids)} matched, {verb} {len(planned)}",
    )  # fmt: skip
    for row, d in planned[: max(args.limit, 0)]:
        t.add_row(str(row.id), row.title, _describe(d))
    print_table(t, console)
    if len(planned) > args.limit:
        console.print(f"... and {len(planned) - args.limit} more (--limit)")
    if done:
        console.print("done: " + ", ".join(f"{v} {k}" for k, v in done.items()), markup=False)
    return 0
