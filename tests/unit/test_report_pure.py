"""The report's pure parts: the statistics, months, the clustering. Table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from datasketch import MinHash

from mailgate.report.clusters import _PARAMS, _signatures, repetitive_issues, words
from mailgate.report.numbers import median, p90, share
from mailgate.report.rows import Month, TicketRow


@pytest.mark.parametrize(
    ("values", "med", "p"),
    [
        ([], None, None),
        ([5], 5, 5),
        ([1, 6, 66], 6, 66),  # rank ceil(2.7) = 3
        ([1, 6, 24, 66], 15, 66),
        (list(range(1, 11)), 5.5, 9),  # rank 9 of 10
        (list(range(1, 21)), 10.5, 18),
    ],
)
def test_median_and_nearest_rank_p90(values, med, p):
    assert median(values) == med and p90(values) == p


def test_share_is_a_percent_with_one_decimal_or_none():
    assert (share(2, 3), share(0, 4), share(1, 0)) == (66.7, 0, None)


def test_months():
    m = Month.parse("2026-12")
    assert (str(m.next()), str(m.previous()), len(m.days())) == ("2027-01", "2026-11", 31)
    assert m.start == datetime(2026, 12, 1, tzinfo=UTC) and m.end == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    for bad in ("2026-13", "2026-1", "nov", "2026-00"):
        with pytest.raises(ValueError, match="not a month like 2026-11"):
            Month.parse(bad)


def ticket(i: int, title: str, body: str) -> TicketRow:
    created = datetime(2026, 11, 2, tzinfo=UTC)
    return TicketRow(i, "support", title, body, created, None, None, 50, "", "", ())


def test_signatures_are_the_ones_datasketch_gives_each_ticket():
    sets = [words(ticket(i, f"Printer {w} broken", f"the {w} tray jams")) for i, w in
            enumerate(["paper", "toner", "duplex", "network"])]  # fmt: skip
    for row, s in zip(_signatures(sets), sets, strict=True):
        one = MinHash(**_PARAMS)
        one.update_batch([w.encode() for w in s])
        assert (row == one.hashvalues.astype(np.uint32)).all()


def test_alike_tickets_cluster_and_others_stay_apart():
    tickets = [ticket(i, "Cannot send email", f"outlook smtp error when sending {w}") for i, w in
               enumerate(["today", "again", "mail", "today"], start=1)]  # fmt: skip
    tickets += [ticket(10, "Invoice wrong", "charged twice for hosting"),
                ticket(11, "Website down", "server returns errors"),
                ticket(12, "Re: Invoice wrong", "charged twice for hosting plan")]  # fmt: skip
    (issue,) = repetitive_issues(tickets, threshold=0.6, min_size=3, top=10)
    assert (issue["label"], issue["count"], issue["examples"]) == (
        "Cannot send email",
        4,
        [1, 2, 3, 4],
    )
    two = repetitive_issues(tickets, threshold=0.6, min_size=2, top=10)
    assert [c["examples"] for c in two] == [[1, 2, 3, 4], [10, 12]]
    strict = repetitive_issues(tickets, threshold=0.95, min_size=2, top=10)
    assert [c["examples"] for c in strict] == [[1, 4]]  # only the identical pair
