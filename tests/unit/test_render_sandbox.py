"""autoresponse/render.py: a dataclass's fields read by a template (the notifications'
digest) give what Jinja's own sandbox gives: the value, or the same error for what the
sandbox refuses (underscore names, functions' internals, `str.format`'s wrapping)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from mailgate.autoresponse.render import TemplateError, render
from mailgate.outgoing.digest import ArticleSummary, OtherTicket, TicketDigest


def _greet(name: str) -> str:
    return f"hi {name}"


@dataclass(frozen=True)
class Fields:
    text: str = "Printer"
    number: int = 7
    ratio: float = 0.5
    flag: bool = True
    nothing: None = None
    items: tuple[str, ...] = ("a", "b")
    template: str = "{0.__class__}"
    formatter: Any = "{}!".format  # the sandbox wraps str.format
    function: Any = _greet
    _private: str = "hidden"
    listed: list[str] = field(default_factory=lambda: ["x", "y"])


DIGEST = TicketDigest(
    id=12,
    title="Printer",
    queue="support",
    status="open",
    priority=3,
    assignee="",
    sticky=False,
    tier="L1",
    requester="Carla <c@example.com>",
    ccs=("cc@example.com",),
    tags=("vip",),
    complexity="",
    created="2026-03-02 09:00 UTC",
    history=(ArticleSummary("2026-03-02 09:00 UTC", "inbound", "c@example.com", "Hello"),),
    latest=(OtherTicket(3, "closed", "2026-01-01", "Old"),),
)

CASES = {
    "plain": "{{ f.text }} {{ f.number }} {{ f.ratio }} {{ f.flag }} {{ f.nothing }}"
    " {{ f.items|join(',') }} {{ f.listed|join(',') }}",
    "format_string": "{{ f.template.format(f) }}",
    "wrapped_format": "{{ f.formatter(f.text) }}",
    "function": "{{ f.function(f.text) }}",
    "function_name": "{{ f.function.__name__ }}",
    "function_code": "{{ f.function.__code__ }}",
    "private": "{{ f._private }}",
    "dunder": "{{ f.__class__ }}",
    "missing": "{{ f.nope }}",
    "digest": "{{ d.id }} {{ d.title }} {% for a in d.history %}{{ a.when }} {{ a.who }}"
    " {{ a.text }}{% endfor %} {% for o in d.latest %}{{ o.id }} {{ o.title }}{% endfor %}"
    " {{ d.ccs|join(', ') }} {{ d.sticky }}",
}


def _jinja(tmp_path: Path, name: str, context: dict[str, Any]) -> str:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(tmp_path)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    try:
        return env.get_template(name).render(context)
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return f"{type(e).__name__}: {e}"


def _ours(tmp_path: Path, name: str, context: dict[str, Any]) -> str:
    try:
        return render(tmp_path, "support", name, context)
    except TemplateError as e:
        return str(e.__cause__ and f"{type(e.__cause__).__name__}: {e.__cause__}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_dataclass_field_reads_as_jinja_sandbox_reads_it(tmp_path: Path, case: str):
    (tmp_path / f"{case}.txt").write_text(CASES[case])
    context = {"f": Fields(), "d": DIGEST}
    assert _ours(tmp_path, f"{case}.txt", context) == _jinja(tmp_path, f"{case}.txt", context)


def test_the_refused_reads_are_refused(tmp_path: Path):
    for case in ("function_code", "private", "dunder"):
        (tmp_path / f"{case}.txt").write_text(CASES[case])
        with pytest.raises(TemplateError, match="unsafe"):
            render(tmp_path, "support", f"{case}.txt", {"f": Fields()})
