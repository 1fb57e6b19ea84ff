"""Every template a queue's mail would use, checked before it is needed: found, valid
Jinja2, using only variables the code gives it, and rendering in the sandbox with a
sample context. check-config, `mailgate run` and a reload run it, so a typo in a
template name or variable is a config error, not a shunted message.

The sample contexts have the variables the builders in this package pass each template
(customer_mails, agent_mails, digest, builders); tests/unit/test_check_config.py renders
the built-in templates with them and compares the acknowledgement's with the real one.
"""

from __future__ import annotations

import difflib
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jinja2 import TemplateNotFound, TemplateSyntaxError, meta
from jinja2.exceptions import UndefinedError

from mailgate.agents.commands.registry import GRAMMAR
from mailgate.autoresponse.render import DEFAULTS, environment
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.outgoing.builders import queue_context, ticket_vars
from mailgate.outgoing.digest import (
    ArticleSummary,
    HeldNotice,
    ListedTicket,
    OtherTicket,
    TicketDigest,
)

AGENT = Agent(name="alice", address="alice@example.test", full_name="Alice Example")
REPLY = "support+t123.alice.abc@example.test"
EVENTS = ("new_ticket", "customer_reply", "assigned", "escalated")


def _digest(queue: Queue) -> TicketDigest:
    return TicketDigest(
        id=123,
        title="Sample ticket",
        queue=queue.name,
        status="open",
        priority=50,
        assignee="alice",
        sticky=True,
        tier="L1",
        requester="Carla Customer <customer@example.com>",
        ccs=("cc@example.com",),
        tags=("sample",),
        complexity="medium",
        created="2025-01-02 10:00 UTC",
        history=(ArticleSummary("2025-01-02 10:00 UTC", "inbound", "customer@example.com", "Hi"),),
        latest=(OtherTicket(7, "closed", "2024-12-01 09:00 UTC", "Earlier ticket"),),
    )


def samples(queue: Queue, hostname: str) -> dict[str, list[dict[str, Any]]]:
    """Template name -> sample contexts (more than one where a branch needs other values)."""
    qc = queue_context(queue)
    tv = ticket_vars(queue, 123, "Sample ticket", "customer@example.com", "Carla Customer")
    tc = {**tv, "priority": 50, "tier": "L2", "tier_name": "Tier 2", "hostname": hostname}
    to_agent = {"agent_name": "Alice Example", "reply_address": REPLY}
    digest = _digest(queue)
    pgp = {"pgp_fingerprint": "0123 4567 89AB CDEF", "pgp_public_key": "-----BEGIN PGP-----"}
    listed = ListedTicket(123, 50, "open", queue.name, "2025-01-02", "Sample", "alice", REPLY)
    out: dict[str, list[dict[str, Any]]] = {
        queue.autoresponse.template: [{**tv, **pgp}, {**tv, **dict.fromkeys(pgp, "")}],
        "answer_footer.txt": [
            {
                "agent_display": "Alice Example, Senior engineer",
                "agent_name": "Alice Example",
                "agent_signature": sig,
                "queue_name": queue.from_name,
                "queue_address": queue.address,
                "tag": queue.tag_for(123),
                "ticket_id": 123,
            }
            for sig in ("Alice", "")
        ],
        "_agent_footer.txt": [{**qc, "agent": AGENT, "command_address": REPLY}],
        "agent_help.txt": [{**qc, "agent": AGENT, "grammar": GRAMMAR}],
        "agent_list.txt": [
            {**qc, "agent": AGENT, "title": "Open tickets", "rows": rows}
            for rows in ((listed,), ())
        ],
        "agent_show.txt": [{**qc, "agent": AGENT, "ticket": digest, "reply_address": REPLY}],
        "agent_no_token.txt": [
            {**qc, "agent": AGENT, "ticket_id": 123, "held": held} for held in (True, False)
        ],
        "agent_result.txt": [
            {
                **qc,
                "agent": AGENT,
                "ok": ok,
                "headline": "Sample result",
                "rows": [("line 1", "#bogus", "unknown command")],
                "sections": ["a section"],
            }
            for ok in (True, False)
        ],
        "closed.txt": [
            {**tc, "days": days, "review_link": link, "reopen_days": reopen, "satisfaction": sv}
            for days, link, reopen, sv in (
                (7, "https://example.com/review", 30, "How did we do?"),
                (0, "", -1, ""),
            )
        ],
        "resolved.txt": [
            {**tc, "status": status, "satisfaction": "How did we do?", "reopen_days": reopen}
            for status, reopen in (("resolved", 30), ("closed", 30), ("closed", -1))
        ],
        "satisfaction.txt": [
            {**tc, "rating_links": links, "review_link": link}
            for links, link in (
                ([(5, "mailto:q@example.test?subject=Rating%205&body=5")], "https://example.com/r"),
                ([], ""),
            )
        ],
        "agent_digest.txt": [
            {**qc, "agent": AGENT, "ticket": digest, "tag": queue.tag_for(123), **extra}
            for extra in (
                {
                    "held": (HeldNotice("2025-01-02 10:00 UTC", "Customer reply", "Re: x"),),
                    "notes": (ArticleSummary("2025-01-02 10:05 UTC", "system", "", "bounce"),),
                },
                {"held": (), "notes": ()},
            )
        ],
        "escalated.txt": [{**tc, "reason": "needs a specialist", "expect_by": "tomorrow"}],
        "escalation_agent.txt": [
            {
                **tc,
                **to_agent,
                "team_lead": lead,
                "from_tier": "L1",
                "from_tier_name": "Tier 1",
                "reason": "first response due",
                "due": due,
                "priority_class": "high",
            }
            for lead, due in ((True, "2025-01-02 12:00 UTC"), (False, ""))
        ],
        "reminder.txt": [
            {**tc, **to_agent, "reason": r, "idle": "1 day", "last_update": "x", "shift_end": "17"}
            for r in ("update", "shift_notes")
        ],
    }
    for event in EVENTS:
        out[f"notify_{event}.txt"] = [
            {**qc, "ticket": digest, "tag": queue.tag_for(123), "actor": actor, "reason": "why"}
            for actor in ("bob", "")
        ]
    return out


def _line(e: BaseException, filename: str) -> int | None:
    """The template line a render error happened on (Jinja2 puts it in the traceback)."""
    lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == filename]
    return lines[-1] if lines else None


def _where(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line else path


Parsed = dict[str, tuple[str, list[str], list[str]]]  # name -> (file, variables, includes)


def _undeclared(env: Any, name: str, parsed: Parsed, seen: set[str]) -> Iterator[tuple[str, str]]:
    """(template file, variable) for every variable a template and its includes use."""
    if name in seen:
        return
    seen.add(name)
    if name not in parsed:
        source, filename, _ = env.loader.get_source(env, name)
        ast = env.parse(source)
        variables = sorted(meta.find_undeclared_variables(ast) - set(env.globals))
        parsed[name] = (filename, variables, [t for t in meta.find_referenced_templates(ast) if t])
    filename, variables, includes = parsed[name]
    for var in variables:
        yield filename, var
    for included in includes:
        yield from _undeclared(env, included, parsed, seen)


def _missing(queue: Queue, name: str, templates_dir: Path) -> str:
    known = sorted({p.name for d in (templates_dir, DEFAULTS) for p in d.glob("*.txt")})
    near = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return (
        f"{queue.source}: autoresponse.template: no template {name!r} in "
        f"{templates_dir / queue.name}, {templates_dir} or the built-in ones{hint}"
    )


def check_template(
    config: Config, queue: Queue, name: str, contexts: list[dict[str, Any]], parsed: Parsed
) -> list[str]:
    env = environment(str(config.templates_dir))
    try:
        template = env.select_template([f"{queue.name}/{name}", name])
    except TemplateSyntaxError as e:
        return [f"{_where(e.filename or name, e.lineno)}: template syntax error: {e.message}"]
    except TemplateNotFound:
        if name == queue.autoresponse.template:
            return [_missing(queue, name, config.templates_dir)]
        raise  # a built-in one is missing: the installation is broken
    filename = template.filename or name
    given = set().union(*(c.keys() for c in contexts))
    try:
        problems = [
            f"{path}: undefined variable {var!r} (it gets: {', '.join(sorted(given))})"
            for path, var in _undeclared(env, template.name or name, parsed, set())
            if var not in given
        ]
    except TemplateSyntaxError as e:  # in an included template
        return [f"{_where(e.filename or name, e.lineno)}: template syntax error: {e.message}"]
    except TemplateNotFound as e:
        return [f"{filename}: includes {e.name!r}, which does not exist"]
    if problems:
        return problems
    for context in contexts:
        try:
            template.render(context)
        except UndefinedError as e:
            return [f"{_where(filename, _line(e, filename))}: {e.message}"]
        except Exception as e:  # noqa: BLE001 - any failure to render is the template's
            return [f"{_where(filename, _line(e, filename))}: {type(e).__name__}: {e}"]
    return []


def template_problems(config: Config) -> list[str]:
    """One line per broken template (a template shared by queues is reported once)."""
    problems: dict[str, None] = {}
    parsed: Parsed = {}  # each template file parsed once, whichever queues use it
    for queue in config.queues:
        for name, contexts in samples(queue, config.main.hostname).items():
            for problem in check_template(config, queue, name, contexts, parsed):
                problems.setdefault(problem, None)
    return list(problems)
