"""Render auto-response bodies with Jinja2 in a sandbox (StrictUndefined)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, Template, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

DEFAULTS = Path(__file__).resolve().parent.parent / "default_templates"


class TemplateError(Exception):
    """A template is missing or broken; names the template and the reason."""


@lru_cache(maxsize=32)
def environment(templates_dir: str) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(templates_dir), FileSystemLoader(str(DEFAULTS))]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=256)
def _where(templates_dir: Path, queue: str, name: str) -> tuple[SandboxedEnvironment, str, str]:
    """The environment, the path of the queue's own file and its template name."""
    return (
        environment(str(templates_dir)),
        os.path.join(templates_dir, queue, name),
        f"{queue}/{name}",
    )


def render(templates_dir: Path, queue: str, name: str, context: dict[str, Any]) -> str:
    """The queue's own `<queue>/<name>` if it exists, else the shared `<name>`."""
    env, own_path, own_name = _where(templates_dir, queue, name)
    # one stat instead of a miss through both loaders (a queue's own file is only ever in
    # templates_dir): three renders a mail, and the miss raised inside Jinja twice each
    own = os.path.isfile(own_path)
    try:
        template = env.get_template(own_name if own else name)
    except TemplateNotFound as e:
        raise TemplateError(f"template {name!r} not found for queue {queue!r}") from e
    try:
        return _render(env, template, context)
    except Exception as e:  # noqa: BLE001 - any template error is reported with its name
        raise TemplateError(f"template {template.name}: {type(e).__name__}: {e}") from e


_globals: dict[int, tuple[Template, dict[str, Any]]] = {}  # id -> (template, its globals)


def _render(env: SandboxedEnvironment, template: Template, context: dict[str, Any]) -> str:
    """`template.render(context)` without its copy of the globals through their ChainMap
    (`dict(ChainMap)`: two thirds of a render's own cost): the template's globals, which
    nothing changes after the environment is made, are copied once per template object (a
    reloaded template is a new one) and the context made of them and `context` as
    `Template.render` makes it (`new_context`: the globals, then the variables)."""
    held = _globals.get(id(template))
    if held is None or held[0] is not template:
        if len(_globals) >= 256:  # each edit of a template makes a new object
            _globals.clear()
        held = _globals[id(template)] = (template, dict(template.globals))
    ctx = template.new_context({**held[1], **context}, shared=True)
    try:
        return env.concat(template.root_render_func(ctx))
    except Exception:
        env.handle_exception()  # as Template.render: the template's lines in the traceback
        raise  # not reached: handle_exception raises
