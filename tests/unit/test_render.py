"""autoresponse/render.py: what `render` makes is what Jinja's `Template.render` makes (it
builds the template's context without Jinja's copy of the globals per render), and an
edited template applies to the next render."""

from __future__ import annotations

import os
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
