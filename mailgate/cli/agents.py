"""`mailgate agents address NAME [QUEUE]`: an agent's command address per queue, where
`#new`, `#list`, `#help` go (keep it private: it carries the agent's token)."""

from __future__ import annotations

import argparse
import sys

from mailgate.agents.tokens import command_address
from mailgate.cli.startup import ensure_secret, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    addr = sub.add_parser("address", help="an agent's command address (keep it private)")
    addr.add_argument("name", help="the agent's name in the agents file")
    addr.add_argument("queue", nargs="?", help="one queue (default: every queue of the agent)")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    agent = cfg.agent(args.name)
    if agent is None:
        print(f"mailgate agents: no agent named {args.name!r} in the agents file", file=sys.stderr)
        return 1
    secret = ensure_secret(cfg)  # the address must verify once the daemon runs
    queues = [args.queue] if args.queue else (agent.queues or [q.name for q in cfg.queues])
    for name in queues:
        q = cfg.queue(name)
        if q is None:
            print(f"mailgate agents: no queue named {name!r}", file=sys.stderr)
            return 1
        print(f"{name}: {command_address(secret, agent.name, q.address)}")
    return 0
