"""Cross-checks between files and queues, over already validated parts. Pure.

One mistake gives one problem, in the file that has it: a queue whose file is broken is
in `broken` (its own error is reported already), so agents and rules naming it are not
blamed again; a clash between two queue files is blamed on the one given last (load.py
passes the queues oldest file first). Agents and rules are named by name.
"""

from __future__ import annotations

from pathlib import Path

from mailgate.config.model import Queue
from mailgate.config.schema import Agent


def queue_problems(queues: list[Queue], broken: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
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
                    f"{q.source}: imap.folders[{i}]: {account}/{folder} is already watched "
                    f"by queue {other.name!r} ({other.source})"
                )
    for q in queues:
        target = q.sla.escalate_queue if q.sla else ""
        if target and target not in names and target not in broken:
            problems.append(f"{q.source}: sla.escalate_queue: no queue named {target!r}")
    return problems


def agent_problems(
    path: Path,
    agents: list[Agent],
    queues: list[Queue],
    broken: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    """Agents naming unknown queues, used twice, without a key a queue needs, or using a
    queue's own address."""
    problems: list[str] = []
    known = {q.name for q in queues}
    owners = {a: q for q in queues for a in q.addresses}
    signed = {q.name for q in queues if q.agent_mail.require_signed_commands}
    seen: set[str] = set()
    for a in agents:
        key = f"agents[{a.name}]"
        unknown = [qn for qn in a.queues if qn not in known and qn not in broken]
        if unknown:
            names = ", ".join(repr(qn) for qn in unknown)
            problems.append(f"{path}: {key}.queues: no queue named {names}")
        if a.name in seen:
            problems.append(f"{path}: {key}.name: two agents are named {a.name!r}")
        seen.add(a.name)
        if not a.pgp_fingerprint and set(a.queues) & signed:
            problems.append(
                f"{path}: {key}.pgp_fingerprint: required, queue(s) "
                f"{', '.join(sorted(set(a.queues) & signed))} require signed commands"
            )
        if a.address in owners:
            problems.append(
                f"{path}: {key}.address: {a.address} is a queue address "
                f"({owners[a.address].name}); agents need their own address"
            )
    return problems


def rule_problems(
    queues: list[Queue],
    agents: list[Agent],
    broken: set[str] = frozenset(),  # type: ignore[assignment]
    agents_ok: bool = True,
) -> list[str]:
    """Routing rules naming a queue or an agent that does not exist, or a name used twice
    (an assignee is not checked while the agents file itself is broken)."""
    problems: list[str] = []
    known = {q.name for q in queues} | set(broken)
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
            if agents_ok and r.assignee and r.assignee not in agent_names:
                problems.append(f"{q.source}: {key}.assignee: no agent named {r.assignee!r}")
    return problems


def unserved_queues(path: Path, agents: list[Agent], queues: list[Queue]) -> list[str]:
    """Warnings: queues no agent serves (their tickets notify nobody)."""
    served = {qn for a in agents for qn in a.queues}
    return [
        f"{q.source}: no agent serves queue {q.name!r}: its tickets notify nobody "
        f"(add it to an agent's queues in {path.name})"
        for q in queues
        if q.name not in served
    ]
