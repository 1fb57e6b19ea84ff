"""The column type of every timestamp: timezone-aware UTC datetimes on every backend.

SQLite keeps no zone: the column stores DATETIME's text of the UTC time. The worker binds
a datetime for nearly every row it writes, so on SQLite (DATETIME's default format) the
type makes that text in one step instead of process_bind_param followed by DATETIME's own
processor, which cost twice as much for the same text (tests/integration/test_utc_text.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.engine import Dialect

# what sqlalchemy.dialects.sqlite.DATETIME stores by default, and the same by position
_SQLITE_DATETIME = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)
_SQLITE_DATETIME_FIELDS = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        impl = self.impl_instance.dialect_impl(dialect)
        if getattr(impl, "_storage_format", None) == _SQLITE_DATETIME:
            return _sqlite_text
        return super().bind_processor(dialect)


def _sqlite_text(value: datetime | None) -> str | None:
    """UtcDateTime.process_bind_param, then SQLite DATETIME's processor, as one."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    u = value.astimezone(UTC)
    return _SQLITE_DATETIME_FIELDS % (
        u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond
    )  # fmt: skip
