"""The pure parts of the search: quick search, user words as full-text queries, dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailgate.cli.search import UsageError, parse_when
from mailgate.store.search import SearchFilter, fts5_query, pg_tsquery, quick_filter


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("123", SearchFilter(ids=(123,))),
        (" #77 ", SearchFilter(ids=(77,))),
        ("carla@example.com", SearchFilter(address="carla@example.com")),
        ("printer broken", SearchFilter(title="printer broken")),
        ("re: 123 printer", SearchFilter(title="re: 123 printer")),
        ("a @ b", SearchFilter(title="a @ b")),
    ],
)
def test_quick_search_is_an_id_an_address_or_title_words(query, expected):
    assert quick_filter(query) == expected


@pytest.mark.parametrize(
    ("words", "fts5", "pg"),
    [
        ("printer", '"printer"', "'printer'"),
        ("grinding  noise", '"grinding" "noise"', "'grinding' & 'noise'"),
        ("serv*", '"serv"*', "'serv':*"),
        ('"quote OR NEAR(x', '"quote" "OR" "NEAR" "x"', "'quote' & 'OR' & 'NEAR' & 'x'"),
        ("café", '"café"', "'café'"),
        ("'; drop table --", '"drop" "table"', "'drop' & 'table'"),
        ("!!!", "", ""),
    ],
)
def test_user_words_are_always_a_valid_query_of_every_word(words, fts5, pg):
    assert fts5_query(words) == fts5
    assert pg_tsquery(words) == pg


@pytest.mark.parametrize(
    ("value", "end", "expected"),
    [
        ("2026-11-03", False, datetime(2026, 11, 3, tzinfo=UTC)),
        ("2026-11-03", True, datetime(2026, 11, 4, tzinfo=UTC)),  # the whole day included
        ("2026-11-03T10:30:00", True, datetime(2026, 11, 3, 10, 30, tzinfo=UTC)),
        ("2026-11-03T10:30:00+02:00", False, datetime(2026, 11, 3, 8, 30, tzinfo=UTC)),
        (None, False, None),
    ],
)
def test_dates_are_whole_days_or_instants(value, end, expected):
    assert parse_when(value, end) == expected


def test_what_is_not_a_date_is_a_usage_error():
    with pytest.raises(UsageError):
        parse_when("3/11/2026", False)
