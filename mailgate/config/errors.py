"""ConfigError and the one format of a config problem: ``FILE: KEY: reason``.

pydantic's errors are said again in our words: keys are paths with list items named by
their `name` (`agents[bob].queues`, not `agents.1.queues`), an unknown key suggests the
nearest valid one, and the reason says what to write ("a whole number, not text in
quotes").
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError


class ConfigError(Exception):
    """One or more problems in the configuration, each naming file, key and reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# pydantic error type -> our words; {ctx keys} are filled in from the error
REASONS = {
    "missing": "required key is missing",
    "int_type": "must be a whole number (like 50, not in quotes)",
    "int_parsing": "must be a whole number (like 50, not in quotes)",
    "int_from_float": "must be a whole number, not a fraction",
    "float_type": "must be a number (like 2.5, not in quotes)",
    "float_parsing": "must be a number (like 2.5, not in quotes)",
    "bool_type": "must be true or false (without quotes)",
    "bool_parsing": "must be true or false (without quotes)",
    "string_type": "must be text in quotes",
    "list_type": 'must be a list, like ["a", "b"]',
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "date_type": 'must be a date, like 2026-12-25 or "2026-12-25"',
    "date_from_datetime_parsing": 'must be a date, like 2026-12-25 or "2026-12-25"',
    "literal_error": "must be {expected}",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "string_too_long": "must be at most {max_length} characters",
    "string_too_short": "must be at least {min_length} characters",
    "too_long": "must have at most {max_length} items",
    "too_short": "must have at least {min_length} items",
}


def _number(v: object) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def reason(e: dict[str, Any]) -> str:
    """One pydantic error in our words."""
    words = REASONS.get(e["type"])
    if words is None:
        return str(e["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    ctx = {k: _number(v) for k, v in (e.get("ctx") or {}).items()}
    try:
        return words.format(**ctx)
    except KeyError:
        return words


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through lists, dicts, unions, Annotated)."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    if typing.get_origin(annotation) in (typing.Annotated,):
        return _models_in(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (list, tuple, dict, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            out += _models_in(arg)
    return out


def known_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys valid at `loc` (the path of the parent table) of `model`'s file."""
    if model is None:
        return []
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        inner = _models_in(field.annotation) if field is not None else []
        if not inner:
            return []
        model = inner[0]
    return [k for k in model.model_fields if k != "base"]


def key_path(loc: tuple[Any, ...], data: Any) -> str:
    """`agents[bob].queues[0]`: list items by their `name` where they have one."""
    out = ""
    for part in loc:
        item = None
        if isinstance(part, int) and isinstance(data, list) and part < len(data):
            item = data[part]
            name = item.get("name") if isinstance(item, dict) else None
            out += f"[{name}]" if isinstance(name, str) and name else f"[{part}]"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
            item = data.get(part) if isinstance(data, dict) else None
        data = item
    return out


def format_validation(
    path: object,
    err: ValidationError,
    section: str = "",
    model: type[BaseModel] | None = None,
    data: Any = None,
) -> list[str]:
    """pydantic errors as `FILE: KEY: reason` lines; `section` prefixes the key (e.g. "imap").

    With the file's `model` and its `data`, list items are named and an unknown key
    suggests the nearest valid one.
    """
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = key_path(loc, data) or "(top level)"
        if section:
            key = f"{section}.{key}" if key != "(top level)" else section
        msg = reason(e)
        if e["type"] == "extra_forbidden":
            near = difflib.get_close_matches(str(loc[-1]), known_keys(model, loc[:-1]), n=1)
            msg = f"unknown key (did you mean {near[0]!r}?)" if near else "unknown key"
        out.append(f"{path}: {key}: {msg}")
    return out
