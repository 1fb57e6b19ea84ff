"""autoresponse/render.py: a template's includes follow its own check. With the mail's clock
an included file edited on disk is used from the next second's renders on (the first render
of each second checks it), at once by a render without a clock, by the next render after one
that failed, and by a render in another thread while another one of that second runs."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailgate.autoresponse.render import TemplateError, render

NOW = datetime(2026, 3, 2, 9, 0, 0, 250_000, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def _edit(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path, (os.path.getmtime(path) + 5,) * 2)  # a new mtime even on a coarse clock


@pytest.fixture()
def templates(tmp_path: Path) -> Path:
    (tmp_path / "body.txt").write_text('body {% include "_part.txt" %}')
    (tmp_path / "other.txt").write_text('other {% include "_part.txt" %}')
    (tmp_path / "_part.txt").write_text("part {{ n }}\n")
    return tmp_path


def _at(templates: Path, now: datetime | None, name: str = "body.txt") -> str:
    return render(templates, "support", name, {"n": 1}, now)


def test_an_edited_include_is_used_from_the_next_second_on(templates: Path):
    assert _at(templates, NOW) == "body part 1\n"
    _edit(templates / "_part.txt", "edited {{ n }}\n")
    assert _at(templates, NOW + timedelta(microseconds=500_000)) == "body part 1\n"
    assert _at(templates, NOW + SECOND) == "body edited 1\n"
    _edit(templates / "_part.txt", "again {{ n }}\n")
    assert _at(templates, NOW + SECOND) == "body edited 1\n"
    assert _at(templates, NOW) == "body again 1\n"  # the clock went back: checked


def test_a_render_without_a_clock_checks_the_include(templates: Path):
    assert _at(templates, NOW) == "body part 1\n"
    _edit(templates / "_part.txt", "edited {{ n }}\n")
    assert _at(templates, None) == "body edited 1\n"
    _edit(templates / "_part.txt", "again {{ n }}\n")
    assert _at(templates, None) == "body again 1\n"


def test_each_template_checks_its_includes_at_its_own_first_render_of_a_second(templates: Path):
    assert _at(templates, NOW) == "body part 1\n"
    _edit(templates / "_part.txt", "edited {{ n }}\n")
    assert _at(templates, NOW, "other.txt") == "other edited 1\n"  # its first render: checked
    assert _at(templates, NOW) == "body edited 1\n"  # the include reloaded is Jinja's cache's


def test_an_include_that_failed_is_checked_again_by_the_next_render(templates: Path):
    _edit(templates / "_part.txt", "broken {{ missing }}\n")
    with pytest.raises(TemplateError, match="missing"):
        _at(templates, NOW)
    _edit(templates / "_part.txt", "fixed {{ n }}\n")
    assert _at(templates, NOW) == "body fixed 1\n"


def test_a_render_in_another_thread_keeps_its_own_check(templates: Path):
    """The skipped check is the rendering thread's: a render without a clock elsewhere,
    while one of the same second runs, still sees the edited include."""
    assert _at(templates, NOW) == "body part 1\n"
    (templates / "slow.txt").write_text('{{ wait() }}{% include "_part.txt" %}')
    inside, edited = threading.Event(), threading.Event()
    seen: list[str] = []

    def wait() -> str:
        inside.set()
        edited.wait(5)
        return ""

    render(templates, "support", "slow.txt", {"n": 1, "wait": lambda: ""}, NOW)

    def same_second() -> None:
        seen.append(render(templates, "support", "slow.txt", {"n": 1, "wait": wait}, NOW))

    t = threading.Thread(target=same_second)
    t.start()
    assert inside.wait(5)
    _edit(templates / "_part.txt", "edited {{ n }}\n")
    assert _at(templates, None) == "body edited 1\n"
    edited.set()
    t.join(5)
    assert seen == ["edited 1\n"]  # Jinja's cache holds the reloaded include by then
