"""The few statistics the report uses, defined so a person can check them by hand."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count)."""
    return round(statistics.median(values), 2) if values else None


def p90(values: Sequence[float]) -> float | None:
    """Nearest rank: the smallest value with at least 90% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[math.ceil(0.9 * len(ordered)) - 1], 2)


def share(part: int, whole: int) -> float | None:
    """Percent, one decimal; None when there is nothing to divide."""
    return round(100.0 * part / whole, 1) if whole else None


def mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def hours(seconds: float) -> float:
    return seconds / 3600.0
