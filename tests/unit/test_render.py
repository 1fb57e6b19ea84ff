"""autoresponse/render.py: what `render` makes is what Jinja's `Template.render` makes (it
builds the template's context without Jinja's copy of the globals per render), and an
edited template applies to the next render (given the mail's clock: to the next second's
mails, and at once after a render that failed)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailgate.autoresponse.render import DEFAULTS, TemplateError, environment, render

TEMPLATES = {
    "globals.txt": "{% for i in range(n) %}{{ i }}{% endfor %} {{ dict(a=1) }} "
    "{% set ns = namespace(x=title) %}{{ ns.x }} {{ cycler('a', 'b').next() }}\n",
    "filters.txt": "{{ title | upper }} {{ items | join(', ') }} {{ '%05d' % n }}\n",
    "loop.txt": "{% for k, v in pairs %}{{ loop.index }}:{{ k }}={{ v }};{% endfor %}\n",
    "macro.txt": "{% macro tag(t) %}[{{ t }}]{% endmacro %}{{ tag(title) }}{{ self }}\n",
}
CONTEXT = {"n": 3, "title": "Printer", "items": ["a", "b"], "pairs": [("x", 1), ("y", 2)]}


@pytest.fixture()
def templates(tmp_path: Path) -> Path:
    for name, text in TEMPLATES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_render_is_what_jinja_renders(templates: Path, name: str):
    expected = environment(str(templates)).get_template(name).render(CONTEXT)
    assert render(templates, "support", name, CONTEXT) == expected
    assert render(templates, "support", name, CONTEXT) == expected  # the copied globals again


@pytest.mark.parametrize("name", sorted(p.name for p in DEFAULTS.iterdir()))
def test_a_missing_variable_is_the_same_error_as_jinja_raises(tmp_path: Path, name: str):
    with pytest.raises(Exception) as jinja:  # noqa: PT011 - whatever Jinja raises
        environment(str(tmp_path)).get_template(name).render({})
    with pytest.raises(TemplateError) as ours:
        render(tmp_path, "support", name, {})
    assert str(ours.value) == f"template {name}: {type(jinja.value).__name__}: {jinja.value}"


def test_an_edited_template_applies_to_the_next_render(templates: Path):
    assert render(templates, "support", "loop.txt", CONTEXT) == "1:x=1;2:y=2;\n"
    own = templates / "support" / "loop.txt"
    own.parent.mkdir()
    own.write_text("own {{ title }}\n")  # the queue's own file appears: used from now on
    assert render(templates, "support", "loop.txt", CONTEXT) == "own Printer\n"
    own.write_text("edited {{ n }}\n")
    os.utime(own, (os.path.getmtime(own) + 5,) * 2)  # a new mtime even on a coarse clock
    assert render(templates, "support", "loop.txt", CONTEXT) == "edited 3\n"
    assert render(templates, "billing", "loop.txt", CONTEXT) == "1:x=1;2:y=2;\n"
    own.unlink()
    assert render(templates, "support", "loop.txt", CONTEXT) == "1:x=1;2:y=2;\n"


NOW = datetime(2026, 3, 2, 9, 0, 0, 250_000, tzinfo=UTC)


def _edit(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path, (os.path.getmtime(path) + 5,) * 2)  # a new mtime even on a coarse clock


def test_the_renders_of_one_second_of_the_clock_share_a_check_of_the_files(templates: Path):
    """With `now`, the files are checked once per second of it: a queue's own file that
    appears, is edited or goes is used from the next second on; without `now`, at once."""

    def at(now: datetime | None) -> str:
        return render(templates, "support", "loop.txt", CONTEXT, now)

    shared, second = "1:x=1;2:y=2;\n", timedelta(seconds=1)
    assert at(NOW) == shared
    own = templates / "support" / "loop.txt"
    own.parent.mkdir()
    own.write_text("own {{ title }}\n")
    assert at(NOW + timedelta(microseconds=700_000)) == shared  # the same second: not checked
    assert at(NOW + second) == "own Printer\n"
    _edit(own, "edited {{ n }}\n")
    assert at(NOW + second) == "own Printer\n"
    assert at(NOW + 2 * second) == "edited 3\n"
    _edit(own, "again {{ n }}\n")
    assert at(NOW) == "again 3\n"  # the clock went back: another second, checked
    _edit(own, "no clock {{ n }}\n")
    assert at(None) == "no clock 3\n"  # no clock: checked every time
    own.unlink()
    assert at(NOW + 3 * second) == shared
    own.write_text("back {{ n }}\n")
    assert at(NOW + 3 * second) == shared
    assert at(None) == "back 3\n"


def test_a_template_that_failed_to_render_is_checked_again_by_the_next_mail(templates: Path):
    own = templates / "support" / "loop.txt"
    own.parent.mkdir()
    own.write_text("Dear {{ undefined_variable }}\n")
    with pytest.raises(TemplateError, match="undefined_variable"):
        render(templates, "support", "loop.txt", CONTEXT, NOW)
    _edit(own, "fixed {{ title }}\n")
    assert render(templates, "support", "loop.txt", CONTEXT, NOW) == "fixed Printer\n"
    _edit(own, "edited {{ title }}\n")
    assert render(templates, "support", "loop.txt", CONTEXT, NOW) == "fixed Printer\n"


def test_a_reloaded_config_takes_its_templates(tmp_path: Path):
    """A reload that points the queue at another templates directory or another template
    (a new Config) renders from them at once; the old config's templates stay its own."""
    from tests.harness import load, write_config

    def config(root: Path, template: str, texts: dict[str, str]):  # type: ignore[no-untyped-def]
        (root / "tpl").mkdir(parents=True)
        for name, body in texts.items():
            (root / "tpl" / name).write_text(body)
        path = write_config(root, main_extra='templates_dir = "../tpl"\n')
        if template:
            queue = path.parent / "queues" / "support.toml"
            on = "[autoresponse]\nenabled = true\n"
            queue.write_text(queue.read_text().replace(on, f'{on}template = "{template}"\n'))
        return load(path)

    def ack_text(cfg) -> str:  # type: ignore[no-untyped-def]
        q = cfg.queue("support")
        return render(cfg.templates_dir, q.name, q.autoresponse.template, {"title": "T"})

    first = config(tmp_path / "a", "", {"new_ticket.txt": "first {{ title }}\n"})
    assert ack_text(first) == "first T\n"
    moved = config(tmp_path / "b", "", {"new_ticket.txt": "moved {{ title }}\n"})
    assert ack_text(moved) == "moved T\n"
    renamed = config(tmp_path / "c", "other.txt", {"other.txt": "other {{ title }}\n"})
    assert ack_text(renamed) == "other T\n"
    assert ack_text(first) == "first T\n"
