"""How fast `mailgate tickets search` answers over a million articles (SQLite; PostgreSQL too).

    .venv/bin/python bench/search.py                          # 1,000,000 articles, SQLite
    .venv/bin/python bench/search.py --articles 100000
    .venv/bin/python bench/search.py --pg auto                # + a throw-away PostgreSQL
    .venv/bin/python bench/search.py --pg postgresql+psycopg://user@host/emptydb --no-sqlite

The database is made by the migrations (so the full-text index is the real one: FTS5
with its triggers, or the GIN expression indexes), then filled through Core inserts in
chunks: N articles on N/5 tickets in three queues, bodies of 40 words drawn from a
vocabulary of 20,000 words with a Zipf-like law (a few words everywhere, most rare), a
tag on a tenth of the tickets, SLA rows with breaches on some. The load rate includes
keeping the full-text index in step (what the triggers add to every article insert).

Each query kind runs `--repeat` times with a different value each time (another word,
address, id ...) through what the CLI runs (`cli/search.found`: the count, the first 50
rows in priority-then-age order, their queues and tags); printed: p50 and p99 in ms and
the mean number of tickets matched. Beside it, the bare floor of full text on SQLite: the
FTS5 MATCH count alone in sqlite3. No assertions: numbers, recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, insert  # noqa: E402

from mailgate.cli.search import found  # noqa: E402
from mailgate.db import engine as db  # noqa: E402
from mailgate.db.models import Article, Ticket, TicketQueue, TicketSla, TicketTag  # noqa: E402
from mailgate.store.search import SearchFilter, quick_filter  # noqa: E402

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
QUEUES = ("support", "billing", "sales")
STATUSES = ("new", "open", "answered", "on-hold", "resolved", "closed", "closed", "closed")
VOCABULARY = 20_000
WORDS_PER_BODY = 40
CHUNK = 5_000


def address(ticket: int) -> str:
    """The requester of ticket `ticket`: 50,000 customers at 2,000 domains."""
    return f"user{ticket % 50_000}@customer{ticket % 2_000}.example"


def vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choices(letters, k=rng.randint(4, 9))))
    return sorted(words)


def fill(engine: Engine, n_articles: int, seed: int = 7) -> tuple[list[str], int]:
    """The tickets and articles; (the vocabulary by rank, the number of tickets)."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    # Zipf, s = 1; cumulative once: choices() would sum 20,000 weights on every call
    cum = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    n_tickets = max(1, n_articles // 5)
    span = 90 * 86400
    with engine.begin() as conn:
        for start in range(0, n_tickets, CHUNK):
            ids = range(start + 1, min(n_tickets, start + CHUNK) + 1)
            rows, queues, tags, slas = [], [], [], []
            for i in ids:
                created = NOW - timedelta(seconds=rng.randrange(span))
                status = rng.choice(STATUSES)
                queue = QUEUES[i % 3]
                rows.append(
                    {
                        "id": i,
                        "title": " ".join(rng.choices(words, cum_weights=cum, k=5)),
                        "requester_addr": address(i),
                        "requester_name": "",
                        "queue": queue,
                        "status": status,
                        "type": "email",
                        "priority": rng.randint(1, 99),
                        "sticky": False,
                        "assignee": rng.choice((None, "alice", "bob", None)),
                        "tier": "L1",
                        "category": rng.choice(("", "billing", "dns", "mail")),
                        "complexity": "",
                        "created_at": created,
                        "updated_at": created,
                        "closed_at": created + timedelta(days=1) if status == "closed" else None,
                    }
                )
                queues.append({"ticket_id": i, "queue": queue})
                if i % 10 == 0:
                    tags.append({"ticket_id": i, "tag": f"tag{i % 40}"})
                if i % 4 == 0:
                    slas.append(_sla(i, queue, status, created, breached=i % 12 == 0))
            conn.execute(insert(Ticket.__table__), rows)
            conn.execute(insert(TicketQueue.__table__), queues)
            if tags:
                conn.execute(insert(TicketTag.__table__), tags)
            conn.execute(insert(TicketSla.__table__), slas)
        t0 = time.perf_counter()
        for start in range(0, n_articles, CHUNK):
            batch = []
            for j in range(start, min(n_articles, start + CHUNK)):
                tid = j % n_tickets + 1
                body = rng.choices(words, cum_weights=cum, k=WORDS_PER_BODY)
                batch.append(
                    {
                        "ticket_id": tid,
                        "kind": "inbound",
                        "subject": "Re: ticket",
                        "body_text": " ".join(body),
                        "created_at": NOW,
                    }
                )
            conn.execute(insert(Article.__table__), batch)
        load = time.perf_counter() - t0
    print(f"  articles loaded: {n_articles / load:,.0f}/s with the full-text index kept in step")
    return words, n_tickets


def _sla(tid: int, queue: str, status: str, created: datetime, breached: bool) -> dict:
    return {
        "ticket_id": tid,
        "m_queue": queue,
        "m_status": status,
        "m_updated_at": created,
        "tier_seen": "L1",
        "set_priority": 50,
        "class_priority": 50,
        "base_priority": 50,
        "steps_done": 0,
        "resp_start": created,
        "res_start": created,
        "tier_start": created,
        "res_breached_at": created + timedelta(days=1) if breached else None,
    }


def kinds(
    words: list[str], n_tickets: int, rng: random.Random
) -> dict[str, Callable[[], SearchFilter]]:
    """Each query kind: a function giving the next filter of that kind."""
    rare = words[10_000:]  # about 1 article in 100,000 each
    middle = words[500:2_000]
    common = words[5:50]

    def day() -> SearchFilter:
        start = NOW - timedelta(days=rng.randrange(90))
        return SearchFilter(created_from=start, created_to=start + timedelta(days=1))

    return {
        "quick: id": lambda: quick_filter(str(rng.randint(1, n_tickets))),
        "quick: address": lambda: quick_filter(address(rng.randint(1, n_tickets))),
        "quick: a title word": lambda: quick_filter(rng.choice(middle)),
        "text: a rare word (rank > 10,000)": lambda: SearchFilter(text=rng.choice(rare)),
        "text: 2 mid words": lambda: SearchFilter(text=" ".join(rng.sample(middle, 2))),
        "text: a common word (rank 5-50)": lambda: SearchFilter(text=rng.choice(common)),
        "text: common word + queue + open": lambda: SearchFilter(
            text=rng.choice(common), queues=(rng.choice(QUEUES),), statuses=("open",)
        ),
        "queue + open + priority >= 90": lambda: SearchFilter(
            queues=(rng.choice(QUEUES),), statuses=("open",), priority_min=90
        ),
        "requester domain": lambda: SearchFilter(
            requester=f"@customer{rng.randrange(2_000)}.example"
        ),
        "tag": lambda: SearchFilter(tags=(f"tag{rng.randrange(40)}",)),
        "sla breached": lambda: SearchFilter(sla="breached"),
        "created on one day": day,
        "everything (no filter)": lambda: SearchFilter(),
    }


def measure(engine: Engine, words: list[str], n_tickets: int, repeat: int) -> None:
    rng = random.Random(11)
    print(f"  {'query':40} {'p50 ms':>8} {'p99 ms':>8} {'matched':>10}")
    with engine.connect() as conn:
        for name, make in kinds(words, n_tickets, rng).items():
            times, matched = [], []
            for _ in range(repeat):
                f = make()
                t0 = time.perf_counter()
                total, _rows = found(conn, f, 50)
                times.append((time.perf_counter() - t0) * 1000)
                matched.append(total)
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(
                f"  {name:40} {statistics.median(times):8.1f} {p99:8.1f} "
                f"{statistics.mean(matched):10,.0f}"
            )


def bare_fts(path: str, words: list[str], repeat: int) -> None:
    """The floor of full text on SQLite: sqlite3 and the FTS5 MATCH count, nothing else."""
    rng = random.Random(11)
    con = sqlite3.connect(path)
    for label, pool in (("a rare word", words[10_000:]), ("a common word", words[5:50])):
        times = []
        for _ in range(repeat):
            w = rng.choice(pool)
            t0 = time.perf_counter()
            con.execute(
                "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", (f'"{w}"',)
            ).fetchone()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"  bare sqlite3 FTS5 count, {label:22} {statistics.median(times):8.1f} {p99:8.1f}")
    con.close()


def run(url: str, n: int, repeat: int) -> None:
    print(f"{url.split(':')[0]}: {n:,} articles  (load average {os.getloadavg()[0]:.1f})")
    engine = db.connect(url)
    try:
        t0 = time.perf_counter()
        words, n_tickets = fill(engine, n)
        print(f"  filled in {time.perf_counter() - t0:.0f} s: {n_tickets:,} tickets")
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        measure(engine, words, n_tickets, repeat)
        if engine.dialect.name == "sqlite":
            bare_fts(engine.url.database or "", words, repeat)
    finally:
        engine.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {rss:.0f} MB; load average after {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--pg", default="", help="a PostgreSQL URL (an empty database), or 'auto'")
    ap.add_argument("--no-sqlite", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="mg-search-") as tmp:
            run(f"sqlite:///{tmp}/bench.db", args.articles, args.repeat)
    if args.pg == "auto":
        from tests.servers import Postgres

        server = Postgres()
        try:
            run(server.create_database("bench_search"), args.articles, args.repeat)
        finally:
            server.stop()
    elif args.pg:
        run(args.pg, args.articles, args.repeat)


if __name__ == "__main__":
    main()
