"""Cross-checks between files and queues, over already validated parts. Pure."""

from __future__ import annotations

from pathlib import Path

from mailgate.config.model import Queue
from mailgate.config.schema import Agent


def queue_problems(queues: list[Queue]) -> list[str]:
    """Names and addresses used twice, a folder watched twice, an unknown escalate_queue."""
    problems: list[str] = []
    names: dict[str, Path] = {}
    owners: dict[str, Queue] = {}
    watched: dict[tuple[str, str], Queue] = {}
    for q in queues:
        if q.name in names:
            problems.append(
                f"{q.source}: name: queue {q.name!r} is already defined in {names[q.name]}"
            )
        names[q.name] = q.source
        for i, a in enumerate(q.addresses):
            if a in owners and owners[a] is not q:
                problems.append(
                    f"{q.source}: addresses[{i}]: {a} is already claimed by queue "
                    f"{owners[a].name!r} ({owners[a].source})"
                )
            owners[a] = q
        for i, folder in enumerate(q.imap.folders if q.imap else ()):
            account = q.imap.account() if q.imap else ""
            other = watched.setdefault((account, folder), q)
            if other is not q:
                problems.append(
                    f"{q.source}: imap.folders.{i}: {account}/{folder} is already watched "
                    f"by queue {other.name!r} ({other.source})"
                )
    for q in queues:
        target = q.sla.escalate_queue if q.sla else ""
        if target and target not in names:
            problems.append(f"{q.source}: sla.escalate_queue: no queue named {target!r}")
    return problems


def agent_problems(path: Path, agents: list[Agent], queues: list[Queue]) -> list[str]:
    """Agents naming unknown queues, used twice, without a key a queue needs, or using a
    queue's own address."""
    problems: list[str] = []
    known = {q.name for q in queues}
    owners = {a: q for q in queues for a in q.addresses}
    signed = {q.name for q in queues if q.agent_mail.require_signed_commands}
    seen: dict[str, int] = {}
    for i, a in enumerate(agents):
        for j, qn in enumerate(a.queues):
            if qn not in known:
                problems.append(f"{path}: agents.{i}.queues.{j}: no queue named {qn!r}")
        if a.name in seen:
            problems.append(f"{path}: agents.{i}.name: {a.name!r} is already agents.{seen[a.name]}")
        seen[a.name] = i
        if not a.pgp_fingerprint and set(a.queues) & signed:
            problems.append(
                f"{path}: agents.{i}.pgp_fingerprint: required, queue(s) "
                f"{', '.join(sorted(set(a.queues) & signed))} require signed commands"
            )
        if a.address in owners:
            problems.append(
                f"{path}: agents.{i}.address: {a.address} is a queue address "
                f"({owners[a.address].name}); agents need their own address"
            )
    return problems


def rule_problems(queues: list[Queue], agents: list[Agent]) -> list[str]:
    """Routing rules naming a queue or an agent that does not exist, or a name used twice."""
    problems: list[str] = []
    known = {q.name for q in queues}
    agent_names = {a.name for a in agents}
    for q in queues:
        seen: set[str] = set()
        for r in q.rules:
            key = f"rules[{r.name}]"
            if r.name in seen:
                problems.append(f"{q.source}: {key}.name: two rules are named {r.name!r}")
            seen.add(r.name)
            if r.queue and r.queue not in known:
                problems.append(f"{q.source}: {key}.queue: no queue named {r.queue!r}")
            if r.assignee and r.assignee not in agent_names:
                problems.append(f"{q.source}: {key}.assignee: no agent named {r.assignee!r}")
    return problems
