"""Volume per day, the first-response distribution, and the top tags and categories with
their change from the month before. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from mailgate.report.rows import ReportRows, TicketRow

# first-response buckets, in hours: [lower, upper)
FRT_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("< 1 h", 0, 1),
    ("1-4 h", 1, 4),
    ("4-8 h", 4, 8),
    ("8-24 h", 8, 24),
    ("1-2 d", 24, 48),
    ("2-7 d", 48, 168),
    (">= 7 d", 168, float("inf")),
)


def volume_per_day(rows: ReportRows, received: list[TicketRow]) -> list[dict[str, Any]]:
    counts = Counter(t.created_at.date() for t in received)
    return [{"date": d.isoformat(), "count": counts.get(d, 0)} for d in rows.month.days()]


def frt_histogram(received: list[TicketRow]) -> list[dict[str, Any]]:
    waits = [
        (t.first_response_at - t.created_at).total_seconds() / 3600
        for t in received
        if t.first_response_at is not None
    ]
    return [
        {"bucket": name, "count": sum(lo <= w < hi for w in waits)} for name, lo, hi in FRT_BUCKETS
    ]


def _top(now: Counter[str], before: Counter[str], n: int) -> list[dict[str, Any]]:
    ranked = sorted(now.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [
        {
            "name": name,
            "count": c,
            "previous": before.get(name, 0),
            "change": c - before.get(name, 0),
        }
        for name, c in ranked
    ]


def _tags(rows: Iterable[Any]) -> Counter[str]:
    return Counter(tag for r in rows for tag in set(r.tags))


def _categories(rows: Iterable[Any]) -> Counter[str]:
    return Counter(r.category for r in rows if r.category)


def top_labels(rows: ReportRows, received: list[TicketRow], n: int) -> dict[str, Any]:
    """The month's most used tags and categories, with last month's count and the change."""
    return {
        "tags": _top(_tags(received), _tags(rows.previous), n),
        "categories": _top(_categories(received), _categories(rows.previous), n),
    }
