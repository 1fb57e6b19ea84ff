"""The one place that makes every text field of `Parsed` valid Unicode (defect recorded).

Whatever a step before it did, a field leaves the parse stage without lone surrogates
(raw 8-bit bytes smuggled through surrogateescape, which SQLite, PostgreSQL and UTF-8
JSON all refuse) and without NUL (PostgreSQL text refuses it).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from itertools import chain
from typing import Any

from mailgate.parse.attachments import Attachment
from mailgate.parse.charsets import guess_decode

_SURROGATES_RE = re.compile(r"[\ud800-\udfff]+")
_ESCAPED_RE = re.compile(r"[\udc80-\udcff]+")


def valid_text(value: str, where: str, defects: list[str]) -> str:
    """`value` as valid Unicode: escaped bytes decoded, other surrogates and NUL replaced."""
    if "\x00" in value:
        value = value.replace("\x00", "")
        defects.append(f"NUL characters removed ({where})")
    if value.isascii() or _no_surrogates(value):
        return value  # the common case
    value = _ESCAPED_RE.sub(lambda m: _unescape(m.group()), value)
    value = _SURROGATES_RE.sub("\ufffd", value)
    defects.append(f"undecodable bytes repaired ({where})")
    return value


def _unescape(run: str) -> str:
    """A run of surrogate-escaped bytes, decoded as the bytes' likely charset."""
    return guess_decode(run.encode("utf-8", "surrogateescape"))[0]


def valid_fields(fields: dict[str, Any], defects: list[str]) -> dict[str, Any]:
    """Every str (also in tuples, header pairs and attachments) of `fields` made valid."""
    if _all_plain(fields.values()):
        return fields  # the common case: one test for every string of the message
    return {name: _valid(value, name, defects) for name, value in fields.items()}


def _all_plain(values: Iterable[Any]) -> bool:
    """Every str of `values` (as `_valid` finds them) is one valid_text would keep."""
    strings: list[str] = []
    for value in values:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, tuple) and value:
            first = value[0]
            if isinstance(first, Attachment):
                for a in value:
                    if not isinstance(a, Attachment):
                        return False
                    strings += (a.filename, a.content_type, a.content_id)
            else:
                strings.extend(chain.from_iterable(value) if isinstance(first, tuple) else value)
    try:
        joined = "".join(strings)
    except TypeError:  # something else in a tuple: let _valid look at each
        return False
    return "\x00" not in joined and (joined.isascii() or _no_surrogates(joined))


def _valid(value: Any, where: str, defects: list[str]) -> Any:
    if isinstance(value, str):
        return valid_text(value, where, defects)
    if isinstance(value, tuple):
        if _plain(value):
            return value  # the common case: one test for all its strings
        return tuple(_valid(v, where, defects) for v in value)
    if isinstance(value, Attachment):
        changes = {
            f: valid_text(getattr(value, f), f"attachment {f}", defects)
            for f in ("filename", "content_type", "content_id")
        }
        return dataclasses.replace(value, **changes)
    return value


def _plain(values: tuple) -> bool:
    """A tuple of str, or of tuples of str (header pairs), that valid_text would keep."""
    pairs = bool(values) and isinstance(values[0], tuple)
    try:
        joined = "".join(chain.from_iterable(values) if pairs else values)
    except TypeError:  # attachments, or something else: look at each
        return False
    return "\x00" not in joined and (joined.isascii() or _no_surrogates(joined))


def _no_surrogates(value: str) -> bool:
    """Only a lone surrogate stops the strict UTF-8 codec (10x faster than a regex search)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
