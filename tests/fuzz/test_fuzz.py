"""Our own fuzz test: deterministic, a few thousand cases; `make fuzz` runs more.

Every case ends as an article, a quarantined message (junk), a duplicate, or a parse-step
rejection (a reason, no
retries): 0 shunted by a bug in a later step, 0 lost. Prints the time and peak RSS.
"""

from __future__ import annotations

import os
import resource
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from mailgate.db.models import Article
from mailgate.db.models_junk import JunkMail
from mailgate.spool import Envelope
from tests.fuzz.cases import cases
from tests.harness import load, offline, write_config

COUNT = int(os.environ.get("MAILGATE_FUZZ_CASES", "3000"))


@pytest.mark.timeout(1800)
def test_fuzz_nothing_lost_nothing_shunted_by_a_bug(tmp_path):
    cfg = load(write_config(tmp_path))
    engine, spool, worker = offline(cfg)
    started = time.monotonic()
    n = 0
    for raw in cases(COUNT):
        spool.put(raw, Envelope(source="pipe", queue="support"))
        n += 1
    result = worker.drain()
    elapsed = time.monotonic() - started
    shunted = spool.shunted()
    with engine.connect() as conn:
        # one inbound article, report article (a bounce's, with its dedupe key) or junk row
        # per stored message (system notes, e.g. a loop's, come on top)
        articles = conn.execute(
            select(func.count())
            .select_from(Article)
            .where(
                (Article.kind == "inbound")
                | ((Article.kind == "system") & Article.dedupe_key.is_not(None))
            )
        ).scalar_one()
        articles += conn.execute(select(func.count()).select_from(JunkMail)).scalar_one()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reasons = Counter(e.envelope.failures[-1]["reason"].split(":")[0][:60] for e in shunted)
    print(
        f"\nfuzz: {n} cases in {elapsed:.1f} s ({n / elapsed:.0f}/s), peak RSS {rss_mb:.0f} MB: "
        f"{result.stored} stored, {result.duplicates} duplicates, {len(shunted)} rejected"
    )
    for reason, k in reasons.most_common(8):
        print(f"  {k:5d}  {reason}")
    bugs = [e for e in shunted if e.envelope.failures[-1]["stage"] != "parse"]
    assert [e.envelope.failures[-1]["reason"][:300] for e in bugs] == []
    assert all(len(e.envelope.failures) == 1 for e in shunted)  # rejected, never retried
    assert result.stored + result.duplicates + len(shunted) == n
    assert articles == result.stored and spool.pending() == 0
