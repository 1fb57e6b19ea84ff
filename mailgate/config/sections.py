"""The queue sections typed once, at load: `[imap]`, `[pgp]`, `[sla]` of a queue file.

Paths in them are relative to the queue file, so each model gets its directory as `base`.
Besides the model's own rules, the checks that need no network and no gpg run here:
secret files exist and variables are set, the GnuPG home is a directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mailgate.config.errors import format_validation
from mailgate.config.imap import ImapSettings
from mailgate.config.pgp import PgpSettings
from mailgate.config.schema import QueueFile
from mailgate.config.sla import SlaSettings

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Sections:
    imap: ImapSettings | None
    pgp: PgpSettings | None
    sla: SlaSettings | None


def parse_section(
    path: Path, name: str, table: dict[str, Any] | None, model: type[Model], problems: list[str]
) -> Model | None:
    """`table` validated by `model`, None when absent or invalid (then its problems are
    appended as ``FILE: NAME.KEY: reason``)."""
    if table is None:
        return None
    if "base" in table and "base" in model.model_fields:
        problems.append(f"{path}: {name}.base: unknown key")
        return None
    data = {**table, "base": path.parent} if "base" in model.model_fields else table
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems.extend(format_validation(path, e, name, model=model, data=table))
        return None


def parse_sections(path: Path, qf: QueueFile, problems: list[str]) -> Sections:
    """The typed sections of one queue file; every problem found is appended."""
    imap = parse_section(path, "imap", qf.imap, ImapSettings, problems)
    pgp = parse_section(path, "pgp", qf.pgp, PgpSettings, problems)
    sla = parse_section(path, "sla", qf.sla, SlaSettings, problems)
    for settings in (imap, pgp):
        if settings is not None:
            problems.extend(settings.problems(path))
    return Sections(imap, pgp, sla)
