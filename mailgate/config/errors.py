"""ConfigError and the one format of a config problem: ``FILE: KEY: reason``. Stdlib only."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class ConfigError(Exception):
    """One or more problems in the configuration, each naming file, key and reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def format_validation(path: object, err: ValidationError, section: str = "") -> list[str]:
    """pydantic errors as `FILE: KEY: reason` lines; `section` prefixes the key (e.g. "imap")."""
    out = []
    for e in err.errors():
        loc = (section, *e["loc"]) if section else e["loc"]
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        out.append(f"{path}: {key}: {msg}")
    return out
