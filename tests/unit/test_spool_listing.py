"""The spool lists a large backlog by name, streamed: with glob() every directory entry
and a Path for each were held at once (12 MiB at 20,000 waiting messages, the worker's
peak RSS at 20,000; docs/performance.md "The parse pool and memory")."""

from __future__ import annotations

import tracemalloc

from mailgate.spool import Spool

WAITING = 5000


def test_a_claim_over_a_large_backlog_holds_little_beyond_the_names(tmp_path):
    spool = Spool(tmp_path / "spool")
    incoming = tmp_path / "spool" / "incoming"
    names = [f"{1764600000000000 + i:020d}-{i:08x}" for i in range(WAITING)]
    for name in names:
        (incoming / f"{name}.eml").write_bytes(b"Subject: x\r\n\r\nx\r\n")
        (incoming / f"{name}.json").write_bytes(b'{"source": "pipe"}')
    tracemalloc.start()
    try:
        assert spool.pending() == WAITING
        [first] = spool.claim(1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.name == names[0]
    # the backlog's names (about 80 bytes each) and little else; glob() peaked at 3 MiB here
    assert peak < WAITING * 250
