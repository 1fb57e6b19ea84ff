"""Bind processors that remember what they converted (store/fast.py runs every value
through one).

A message's `now` goes to several columns of several statements, and again to its batch's
flush, table by table (store/batch.py): a processor remembers the datetimes, dates and
booleans it converted, the same objects only (an equal datetime in another zone is
another value), up to a thousand at a time, and what it makes of None and of an empty list
or dict (JSON: cc, defects). A list or dict with items is converted on every call: it may
have changed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None
_IMMUTABLE = (datetime, date, bool)
_memos: dict[tuple[str, Any], Processor] = {}
REMEMBERED = 1024  # values a processor remembers: a batch has about two datetimes a message


def shared(dialect: Dialect, type_: Any) -> Processor:
    """The bind processor of `type_`, remembering the immutable values it converted; one
    per dialect and type where SQLAlchemy's cache key says the types behave the same
    (class and arguments), else one per bind."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return None
    with warnings.catch_warnings():  # a TypeDecorator without cache_ok: not shared
        warnings.simplefilter("ignore")
        same = type_._static_cache_key
    if not isinstance(same, tuple):
        return remembering(process)
    key = (dialect.name, same)
    if key not in _memos:
        _memos[key] = remembering(process)
    return _memos[key]


def _of_none(process: Callable[[Any], Any]) -> Any:
    """What `process` makes of None (JSON: 'null'), or _NOTHING if it refuses it."""
    try:
        return process(None)
    except Exception:
        return _NOTHING


def remembering(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # id -> (value, converted): the value is kept, so its id is not reused while it is here;
    # threads (worker, sender) share it, each get and set is one dict operation
    memo: dict[int, tuple[Any, Any]] = {}
    empty: dict[type, Any] = {}  # an empty list or dict (JSON: cc, defects) made once
    none = _of_none(process)

    def remembered(value: Any) -> Any:
        if value is None and none is not _NOTHING:
            return none
        seen = memo.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        if not value and type(value) in (list, dict):
            if type(value) not in empty:
                empty[type(value)] = process(type(value)())
            return empty[type(value)]
        out = process(value)
        if type(value) in _IMMUTABLE:
            if len(memo) >= REMEMBERED:
                memo.clear()
            memo[id(value)] = (value, out)
        return out

    return remembered


_NOTHING = object()
