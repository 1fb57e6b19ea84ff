"""Render auto-response bodies with Jinja2 in a sandbox (StrictUndefined)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateNotFound
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


def render(templates_dir: Path, queue: str, name: str, context: dict[str, Any]) -> str:
    """The queue's own `<queue>/<name>` if it exists, else the shared `<name>`."""
    env = environment(str(templates_dir))
    # one stat instead of a miss through both loaders (a queue's own file is only ever in
    # templates_dir): three renders a mail, and the miss raised inside Jinja twice each
    own = os.path.isfile(os.path.join(templates_dir, queue, name))
    try:
        template = env.get_template(f"{queue}/{name}" if own else name)
    except TemplateNotFound as e:
        raise TemplateError(f"template {name!r} not found for queue {queue!r}") from e
    try:
        return template.render(context)
    except Exception as e:  # noqa: BLE001 - any template error is reported with its name
        raise TemplateError(f"template {template.name}: {type(e).__name__}: {e}") from e
