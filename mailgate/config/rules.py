"""`[[rules]]` of a queue file: routing rules for new tickets, checked whole at load.

A rule has a name, matchers and actions. Every matcher given must match (and); within a
matcher any one keyword or address is enough (or). Keywords are case-insensitive whole
words ("site down" matches "Site  DOWN!" but not "website downtime"); a `*_regex` is a
regular expression (case-insensitive unless it says `(?-i)`), compiled here so a bad one
is a load error, and run with a time limit (queues/rules.py). The evaluation is
queues/rules.py; docs/routing.md shows the examples.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import regex
from pydantic import AfterValidator, Field, field_validator, model_validator

from mailgate.config.base import NotBlank, Strict, valid_name

PRIORITY_CLASSES = ("critical", "high", "medium", "low")
COMPLEXITIES = ("lower", "medium", "hard")  # the SOP's lower / medium / hard case
TAG_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,59}")  # as the #tag command takes them
HEADER_NAME_RE = re.compile(r"[!-9;-~]+")  # RFC 5322 field name
DOMAIN_RE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")
REGEX_FLAGS = regex.IGNORECASE | regex.VERSION0


def compile_regex(pattern: str) -> regex.Pattern[str]:
    """The compiled pattern, or ValueError saying what is wrong with it."""
    try:
        return regex.compile(pattern, REGEX_FLAGS)
    except regex.error as e:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {e}") from None


def _regex(v: str) -> str:
    if v:
        compile_regex(v)
    return v


def _keyword(v: str) -> str:
    if not re.search(r"\w", v):
        raise ValueError(f"{v!r} is not a keyword (it needs a letter or digit)")
    return " ".join(v.lower().split())


def _sender(v: str) -> str:
    """An address (alice@example.com) or a domain (example.com, @example.com)."""
    v = v.strip().lower()
    local, at, domain = v.rpartition("@")
    if not DOMAIN_RE.fullmatch(domain) or (at and local and any(c in local for c in " <>")):
        raise ValueError(f"{v!r} is neither an address nor a domain")
    return v


def _tag(v: str) -> str:
    if not TAG_RE.fullmatch(v):
        raise ValueError(f"{v!r} is not a tag (a-z, 0-9, '_', '.', '-', at most 60)")
    return v


Keyword = Annotated[str, AfterValidator(_keyword)]
Regex = Annotated[str, AfterValidator(_regex)]
Sender = Annotated[str, AfterValidator(_sender)]
Tag = Annotated[str, AfterValidator(_tag)]

MATCHERS = (
    "subject",
    "subject_regex",
    "body",
    "body_regex",
    "text",
    "text_regex",
    "sender",
    "header",
    "header_regex",
    "has_attachment",
)
ACTIONS = ("queue", "priority", "priority_class", "tags", "category", "complexity", "assignee")


class Rule(Strict):
    name: NotBlank
    # matchers (text = subject or body)
    subject: list[Keyword] = []
    subject_regex: Regex = ""
    body: list[Keyword] = []
    body_regex: Regex = ""
    text: list[Keyword] = []
    text_regex: Regex = ""
    sender: list[Sender] = []
    header: dict[str, list[Keyword]] = {}
    header_regex: dict[str, Regex] = {}
    has_attachment: bool | None = None
    # actions
    queue: str = ""  # a queue's name (checked against the queue files by config/checks.py)
    priority: Annotated[int, Field(ge=1, le=99)] | None = None
    priority_class: Literal["critical", "high", "medium", "low"] | None = None
    tags: list[Tag] = []
    category: Annotated[str, Field(max_length=100)] = ""
    complexity: Literal["lower", "medium", "hard"] | None = None
    assignee: str = ""  # an agent's name
    stop: bool = False  # no later rule runs once this one matched

    @field_validator("queue", "assignee")
    @classmethod
    def _name(cls, v: str) -> str:
        return valid_name(v) if v else v

    @field_validator("header", "header_regex")
    @classmethod
    def _header_names(cls, v: dict[str, object]) -> dict[str, object]:
        for name in v:
            if not HEADER_NAME_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not a header name")
        return {name.lower(): value for name, value in v.items()}

    @model_validator(mode="after")
    def _complete(self) -> Rule:
        given = self.model_fields_set
        if not any(getattr(self, m) not in ([], {}, "", None) for m in MATCHERS):
            raise ValueError(f"rule {self.name!r} has no matcher ({', '.join(MATCHERS)})")
        if not self.stop and not any(getattr(self, a) not in ([], "", None) for a in ACTIONS):
            raise ValueError(
                f"rule {self.name!r} does nothing: give an action ({', '.join(ACTIONS)}) or stop"
            )
        if {"priority", "priority_class"} <= given:
            raise ValueError(f"rule {self.name!r}: give priority or priority_class, not both")
        return self
