"""How the parse pool cuts a batch: one contiguous chunk per process, in spool order."""

from __future__ import annotations

import pytest

from mailgate.pipeline.pool import chunks


@pytest.mark.parametrize(
    ("n_raws", "processes", "sizes"),
    [
        (64, 2, [32, 32]),
        (65, 2, [33, 32]),
        (10, 3, [4, 3, 3]),
        (8, 1, [8]),
        (2, 4, [1, 1]),  # never an empty chunk
        (0, 2, []),
    ],
)
def test_chunks_are_contiguous_nearly_equal_and_in_order(n_raws, processes, sizes):
    raws = [str(i).encode() for i in range(n_raws)]
    out = chunks(raws, processes)
    assert [len(c) for c in out] == sizes
    assert [r for c in out for r in c] == raws
