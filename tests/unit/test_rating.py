"""read_rating(): which customer mails answer the satisfaction survey. Pure, table-driven."""

from __future__ import annotations

import pytest

from mailgate.pipeline.rating import Rating, read_rating

SURVEY = "Re: [support #12] Printer is broken"
QUOTE = "\n\nOn Mon, 2 Nov 2026, Support <support@example.test> wrote:\n> How did we do? 1-5\n"

CASES: dict[str, tuple[str, str, Rating | None]] = {
    "a bare number": (SURVEY, "4\n", Rating(4, "")),
    "a number and a comment below": (
        SURVEY,
        "5\nFast and friendly.\n" + QUOTE,
        Rating(5, "Fast and friendly."),
    ),
    "blank lines first": (SURVEY, "\n\n  3  \n", Rating(3, "")),
    "out of five": (SURVEY, "2/5\nslow\n", Rating(2, "slow")),
    "stars": (SURVEY, "5 stars!\n", Rating(5, "")),
    "a number, a dash and a comment": (
        SURVEY,
        "1 - nobody read my mail\n",
        Rating(1, "nobody read my mail"),
    ),
    "the mailto link": ("Rating 4 [support #12]", "4", Rating(4, "")),
    "the link's subject, body left out by the client": (
        "Rating 2 [support #12]",
        "",
        Rating(2, ""),
    ),
    "the link's subject, a comment typed": (
        "Re: Rating 3 [support #12]",
        "ok I guess" + QUOTE,
        Rating(3, "ok I guess"),
    ),
    "a numbered list is not a rating": (SURVEY, "1. the printer is still broken\n", None),
    "a sentence is not a rating": (SURVEY, "It still does not print.\n", None),
    "out of range": (SURVEY, "7\n", None),
    "zero": (SURVEY, "0\n", None),
    "a year": (SURVEY, "2026 was a bad year\n", None),
    "only the quote has a number": (SURVEY, "thanks" + QUOTE.replace("1-5", "5"), None),
    "a signature only": (SURVEY, "--\n5\n", None),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_read_rating(case: tuple[str, str, Rating | None]) -> None:
    subject, text, expected = case
    assert read_rating(subject, text) == expected


def test_a_long_comment_is_cut() -> None:
    rating = read_rating(SURVEY, "5\n" + "x" * 5000)
    assert rating is not None and len(rating.comment) == 2000
