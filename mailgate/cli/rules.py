"""`mailgate rules test msg.eml`: what the routing rules would do with a message, as a new
ticket of the queue it is addressed to. Reads the configuration and the file, nothing else."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from mailgate.cli.startup import load_config
from mailgate.config.rules import Rule
from mailgate.parse.limits import ParseRejected
from mailgate.parse.message import parse
from mailgate.queues.routing import route
from mailgate.queues.rules import Routing, evaluate, initial_priority
from mailgate.spool import Envelope


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    t = sub.add_parser(
        "test",
        help="show which rules match a message and what they would set",
        epilog="example: mailgate rules test --queue support message.eml",
    )
    t.add_argument("file", help="the message (RFC 5322, e.g. a saved .eml); - for stdin")
    t.add_argument("--queue", help="the queue it arrives in (default: from its To/Cc headers)")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    try:
        parsed = parse(raw)
    except ParseRejected as e:
        print(f"not a message mailgate would take: {e.reason}")
        return 1
    if args.queue and cfg.queue(args.queue) is None:
        print(f"no queue named {args.queue!r}")
        return 2
    queues = route(Envelope(source="pipe", queue=args.queue or ""), parsed, cfg)
    if not queues:
        print("no queue: the To/Cc headers name no queue address (give --queue)")
        return 1
    primary = cfg.queue(queues[0])
    assert primary is not None
    routing = evaluate(primary.rules, parsed)
    home = cfg.queue(routing.queue) or primary
    print(f"arrives in queue {primary.name}: {len(primary.rules)} rule(s)")
    hit = {h.rule for h in routing.hits}
    stopped = ""
    for r, line in _rule_lines(primary.rules, routing):
        print(line)
        if r.name in hit and r.stop:
            stopped = r.name
    for note in routing.notes:
        print(f"  note: {note}")
    print(f"queue     {primary.name}" + (f" -> {home.name}" if home is not primary else ""))
    print(f"priority  {initial_priority(routing, home)}" + _class(routing))
    for name in ("category", "complexity", "assignee"):
        print(f"{name:<9} {getattr(routing, name) or '-'}")
    print(f"tags      {', '.join(routing.tags) or '-'}")
    if stopped:
        print(f"(rule {stopped!r} stopped the rules after it)")
    return 0


def _class(routing: Routing) -> str:
    return f" (class {routing.priority_class})" if routing.priority_class else ""


def _rule_lines(rules: Iterable[Rule], routing: Routing) -> Iterator[tuple[Rule, str]]:
    hits = {h.rule: h for h in routing.hits}
    done = False
    for r in rules:
        if done:
            yield r, f"  -  {r.name}: not run (an earlier rule stopped)"
        elif r.name in hits:
            yield r, f"  +  {r.name}: {'; '.join(hits[r.name].reasons)}"
            done = r.stop
        else:
            yield r, f"  -  {r.name}: no match"
