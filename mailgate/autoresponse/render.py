"""Render auto-response bodies with Jinja2 in a sandbox (StrictUndefined)."""

from __future__ import annotations

import dataclasses
import os
import stat
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, Template, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

DEFAULTS = Path(__file__).resolve().parent.parent / "default_templates"


class TemplateError(Exception):
    """A template is missing or broken; names the template and the reason."""


# set while a render reuses the files checked earlier in its second: what it includes is
# not checked either (per thread and task, so a render elsewhere keeps its own check)
_INCLUDES_CHECKED = ContextVar("includes_checked", default=False)


# field values the sandbox's checks always pass (no `str.format` to wrap, no internals)
_PLAIN_VALUES = frozenset({str, int, float, bool, type(None), tuple})
_MISSING = object()


@lru_cache(maxsize=256)
def _fields(cls: type) -> frozenset[str]:
    """A dataclass's fields that templates may read as Jinja's sandbox lets them (no "_")."""
    if not dataclasses.is_dataclass(cls):
        return frozenset()
    return frozenset(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_"))


class _Environment(SandboxedEnvironment):
    """Jinja's sandbox with two shortcuts: the reload check of included templates
    (`auto_reload`) off while a render of the same second as its template's last check runs,
    and a dataclass's plain field read without the checks that always pass for it."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        # a notification's digest reads ~29 fields: the checks were a fifth of its CPU
        if attribute in _fields(type(obj)):
            value = getattr(obj, attribute, _MISSING)
            if type(value) in _PLAIN_VALUES:
                return value
        return super().getattr(obj, attribute)

    @property  # type: ignore[override]
    def auto_reload(self) -> bool:
        return self._auto_reload and not _INCLUDES_CHECKED.get()

    @auto_reload.setter
    def auto_reload(self, value: bool) -> None:
        self._auto_reload = value


@lru_cache(maxsize=32)
def environment(templates_dir: str) -> SandboxedEnvironment:
    return _Environment(
        loader=ChoiceLoader([FileSystemLoader(templates_dir), FileSystemLoader(str(DEFAULTS))]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


_Loaded = tuple[Template, float | None, dict[str, Any]]  # template, own file's mtime, globals


class _Where:
    """One (templates dir, queue, name): its environment, the queue's own file and template
    name, the template last loaded for it (with the mtime of the queue's own file it
    was loaded from, None for the shared one, and a copy of its globals), and the second
    of the mails' clock its files were last checked in (None: not since a render failed)."""

    __slots__ = ("checked", "env", "loaded", "own_name", "own_path")

    def __init__(self, templates_dir: Path, queue: str, name: str) -> None:
        self.env = environment(str(templates_dir))
        self.own_path = os.path.join(templates_dir, queue, name)
        self.own_name = f"{queue}/{name}"
        self.loaded: _Loaded | None = None
        self.checked: int | None = None


@lru_cache(maxsize=256)
def _where(templates_dir: Path, queue: str, name: str) -> _Where:
    return _Where(templates_dir, queue, name)


def _own_mtime(path: str) -> float | None:
    """The mtime of the queue's own file, None when there is none (as os.path.isfile)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_mtime if stat.S_ISREG(st.st_mode) else None


def render(
    templates_dir: Path,
    queue: str,
    name: str,
    context: dict[str, Any],
    now: datetime | None = None,
) -> str:
    """The queue's own `<queue>/<name>` if it exists, else the shared `<name>`.

    Without `now` the files are checked at every render. With `now` (the clock of the mail
    it is for) they are checked once per second of it: an edit on disk is used from the
    next second's mails on, and a template that failed to render is checked again by the
    next render (its fix is used by the next mail)."""
    where = _where(templates_dir, queue, name)
    second = None if now is None else int(now.timestamp())
    loaded = where.loaded
    # the files' two stats were half a render's CPU in a drain: the acknowledgements of one
    # second share them, and the notifications the stat of the digest they include
    checked = True
    if loaded is None or second is None or second != where.checked:
        loaded = _current(where, queue, name)
        where.checked = second
        checked = False
    template = loaded[0]
    token = _INCLUDES_CHECKED.set(checked)
    try:
        return _render(where.env, template, loaded[2], context)
    except Exception as e:  # noqa: BLE001 - any template error is reported with its name
        where.checked = None
        raise TemplateError(f"template {template.name}: {type(e).__name__}: {e}") from e
    finally:
        _INCLUDES_CHECKED.reset(token)


def _current(where: _Where, queue: str, name: str) -> _Loaded:
    """The template Jinja would give now for `where`, loaded again only when it changed."""
    # one stat instead of a miss through both loaders (a queue's own file is only ever in
    # templates_dir): three renders a mail, and the miss raised inside Jinja twice each
    mtime = _own_mtime(where.own_path)
    loaded = where.loaded
    # the template kept while it is the one Jinja would give: the same file, not edited
    # since (the queue's own file: its mtime, taken before it was loaded, so an edit while
    # loading loads again; the shared one: Jinja's own check); else loaded through the
    # environment, which checks again
    if loaded is None or loaded[1] != mtime or (mtime is None and not loaded[0].is_up_to_date):
        try:
            template = where.env.get_template(name if mtime is None else where.own_name)
        except TemplateNotFound as e:
            raise TemplateError(f"template {name!r} not found for queue {queue!r}") from e
        loaded = where.loaded = (template, mtime, dict(template.globals))
    return loaded


def _render(
    env: SandboxedEnvironment, template: Template, globals_: dict[str, Any], context: dict[str, Any]
) -> str:
    """`template.render(context)` without its copy of the globals through their ChainMap
    (`dict(ChainMap)`: two thirds of a render's own cost): the template's globals, which
    nothing changes after the environment is made, copied once per template object (a
    reloaded template is a new one), and the context made of them and `context` as
    `Template.render` makes it (`new_context`: the globals, then the variables; the
    globals' names from the copy, not from a walk of the ChainMap)."""
    ctx = env.context_class(
        env, {**globals_, **context}, template.name, template.blocks, globals=globals_
    )
    try:
        return env.concat(template.root_render_func(ctx))
    except Exception:
        env.handle_exception()  # as Template.render: the template's lines in the traceback
        raise  # not reached: handle_exception raises
