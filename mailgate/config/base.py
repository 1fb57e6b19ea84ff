"""What every config model shares: strict frozen pydantic models, the name and address rules."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

ADDRESS_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class Strict(BaseModel):
    """Unknown keys are errors; a validated value never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def valid_name(v: str) -> str:
    if not NAME_RE.match(v):
        raise ValueError("must be lowercase letters, digits, '-' or '_' (at most 40)")
    return v


def valid_address(v: str) -> str:
    """A lowercased email address, or ValueError naming it."""
    if not ADDRESS_RE.match(v):
        raise ValueError(f"{v!r} is not an email address")
    return v.lower()


def not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty")
    return v.strip()


Name = Annotated[str, AfterValidator(valid_name)]  # of a queue or an agent
Address = Annotated[str, AfterValidator(valid_address)]
NotBlank = Annotated[str, AfterValidator(not_blank)]  # stripped
