"""What every config model shares: strict frozen pydantic models, the name and address rules."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

ADDRESS_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class Strict(BaseModel):
    """Unknown keys are errors; a validated value never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def valid_name(v: str) -> str:
    if not NAME_RE.match(v):
        raise ValueError("must be lowercase letters, digits, '-' or '_' (at most 40)")
    return v


def valid_address(v: str) -> str:
    """A lowercased email address, or ValueError naming it."""
    if not ADDRESS_RE.match(v):
        raise ValueError(f"{v!r} is not an email address")
    return v.lower()
