"""How long the scheduler's sweeps take over many open tickets (SQLite; PostgreSQL too).

    .venv/bin/python bench/sweeps.py                         # 10k, 100k, 1M on SQLite
    .venv/bin/python bench/sweeps.py --sizes 10000,100000
    .venv/bin/python bench/sweeps.py --pg auto               # + a throw-away PostgreSQL
    .venv/bin/python bench/sweeps.py --pg postgresql+psycopg://user@host/emptydb

For each size: N open tickets in three queues with [sla] (growth 1/business hour), spread
over 30 days (20 % new, 50 % open and waiting, 15 % answered, 15 % on hold; 10 % at L2,
2 % at L3; a third assigned), generated with one INSERT ... SELECT over a recursive CTE.

- first sight: sweep_track creating N ticket_sla rows, then sweep_priority growing them all;
- steady state: every older target is taken as handled by earlier minutes (one UPDATE marks
  breaches older than a day), one catch-up run handles the rest, then the figure is the
  median of three whole runs a minute apart, per sweep (wall and CPU seconds), with the
  tickets each changed and the SQL statements each executed (bounded, whatever N is);
- the track sweep once more with a full resync (every open ticket re-read: at start and
  once an hour).

The database is a file on local disk with the daemon's settings (WAL, synchronous=FULL).
No assertions: numbers to compare runs, recorded in docs/scheduler.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, event, text  # noqa: E402

from mailgate.config import load as config_mod  # noqa: E402
from mailgate.config.model import Config  # noqa: E402
from mailgate.db import engine as db  # noqa: E402
from mailgate.scheduler.runner import SWEEPS, run_all_sweeps  # noqa: E402
from mailgate.scheduler.sweeps.track import sweep_track  # noqa: E402

NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)  # a Wednesday, in business hours
SPAN_SECONDS = 30 * 86400
QUEUES = ("support", "billing", "sales")

SLA = """
[sla]
timezone = "Europe/Berlin"
holidays = [2026-01-01, 2026-12-25]
priority_growth_per_hour = 1
shift_ends = ["17:00"]
review_link = "https://www.trustpilot.com/evaluate/example.test"

[close]
after_days = 7
"""


def write_config(root: Path, url: str) -> Config:
    cfg = root / "config"
    (cfg / "queues").mkdir(parents=True)
    (cfg / "mailgate.toml").write_text(
        f'[mailgate]\ndata_dir = "../var"\ndatabase_url = "{url}"\n'
        'hostname = "bench.example.test"\nsecret = { env = "MG_BENCH_SECRET" }\n'
    )
    for name in QUEUES:
        (cfg / "queues" / f"{name}.toml").write_text(
            f'name = "{name}"\naddresses = ["{name}@example.test"]\nsubject_tag = "{name}"\n' + SLA
        )
    agents = "".join(
        f'[[agents]]\nname = "{n}"\naddress = "{n}@example.test"\n'
        f'queues = ["support", "billing", "sales"]\ntier = "{tier}"\nteam_lead = {lead}\n\n'
        for n, tier, lead in (("bob", "L1", "false"), ("alice", "L2", "false"),
                              ("carol", "L3", "false"), ("lena", "L1", "true"))
    )  # fmt: skip
    (cfg / "agents.toml").write_text(agents)
    import os

    os.environ.setdefault("MG_BENCH_SECRET", "bench-secret-0123456789abcdef")
    return config_mod.load(cfg / "mailgate.toml")


def _ago(engine: Engine, seconds_sql: str) -> str:
    """SQL for NOW minus an integer number of seconds, as the dialect stores UtcDateTime."""
    base = NOW.replace(tzinfo=None).isoformat(sep=" ")
    if engine.dialect.name == "postgresql":
        return f"(TIMESTAMP '{base}' - ({seconds_sql}) * INTERVAL '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f000', '{base}', '-' || ({seconds_sql}) || ' seconds')"


def generate(engine: Engine, n: int) -> float:
    """N tickets in one INSERT ... SELECT; returns seconds taken."""
    step = max(SPAN_SECONDS // n, 1)
    created = _ago(engine, f"(n * {step}) % {SPAN_SECONDS} + 120")
    # open tickets: answered a minute after creation, the customer wrote again after that
    answered = _ago(engine, f"(n * {step}) % {SPAN_SECONDS} + 60")
    replied = _ago(engine, f"(n * {step}) % {SPAN_SECONDS}")
    # answered tickets: the answer is less than 7 days old, so few are due to close
    closing = _ago(engine, "(n * 61) % 600000")
    status = (
        "CASE WHEN n % 20 < 4 THEN 'new' WHEN n % 20 < 14 THEN 'open' "
        "WHEN n % 20 < 17 THEN 'answered' ELSE 'on-hold' END"
    )
    queue = "CASE n % 3 WHEN 0 THEN 'support' WHEN 1 THEN 'billing' ELSE 'sales' END"
    tier = "CASE WHEN n % 50 = 0 THEN 'L3' WHEN n % 10 = 0 THEN 'L2' ELSE 'L1' END"
    sql = f"""
    WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {n})
    INSERT INTO tickets (title, requester_addr, requester_name, queue, status, type, priority,
        sticky, assignee, tier, category, complexity, created_at, updated_at,
        first_response_at, last_customer_at, last_answer_at)
    SELECT 'Ticket ' || n, 'customer' || n || '@example.com', '', {queue}, {status}, 'email',
        1 + (n * 37) % 99, false, CASE WHEN n % 3 = 0 THEN 'bob' END, {tier}, '', '',
        {created},
        CASE WHEN n % 20 < 4 THEN {created} WHEN n % 20 < 14 THEN {replied}
             WHEN n % 20 < 17 THEN {closing} ELSE {answered} END,
        CASE WHEN n % 20 < 4 THEN NULL WHEN n % 20 BETWEEN 14 AND 16 THEN {closing}
             ELSE {answered} END,
        CASE WHEN n % 20 < 14 AND n % 20 >= 4 THEN {replied} ELSE {created} END,
        CASE WHEN n % 20 < 4 THEN NULL WHEN n % 20 BETWEEN 14 AND 16 THEN {closing}
             ELSE {answered} END
    FROM seq
    """
    if engine.dialect.name == "postgresql":
        sql = sql.replace("%", "%%")  # psycopg placeholders
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)
    vacuum(engine)
    return time.perf_counter() - t0


def vacuum(engine: Engine) -> None:
    """PostgreSQL: statistics and the visibility map, as autovacuum keeps them."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


def mark_handled(engine: Engine) -> None:
    """Steady state: what fell due more than a day ago was handled by earlier minutes."""
    day = NOW - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE ticket_sla SET fr_breached_at = :now, res_breached_at = :now, "
                "tier_breached_at = :now, reminded_at = :now WHERE res_start < :day"
            ),
            {"now": NOW.replace(tzinfo=None), "day": day.replace(tzinfo=None)},
        )
    vacuum(engine)


class StatementCounter:
    def __init__(self, engine: Engine):
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: object) -> None:
        self.count += 1


def timed_run(
    engine: Engine,
    cfg: Config,
    now: datetime,
    counter: StatementCounter,
    only: tuple[str, ...] = (),
) -> dict[str, tuple[float, float, int, int]]:
    """Each sweep in its own transaction, as run_all_sweeps does:
    (wall seconds, CPU seconds of this process, tickets changed, SQL statements)."""
    out = {}
    for name, sweep in SWEEPS:
        if only and name not in only:
            continue
        before = counter.count
        t0, c0 = time.perf_counter(), time.process_time()
        with engine.begin() as conn:
            changed = sweep(conn, cfg, now)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out[name] = (wall, cpu, changed, counter.count - before)
    return out


def bench_size(url: str, n: int, root: Path, reset: bool = False) -> None:
    cfg = write_config(root, url)
    engine = db.connect(url)
    if reset:  # a database given by URL is reused from one size to the next
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE tickets CASCADE")
    counter = StatementCounter(engine)
    gen = generate(engine, n)
    print(f"\n== {engine.dialect.name}, {n:,} open tickets (generated in {gen:.1f} s)")
    first = timed_run(engine, cfg, NOW - timedelta(minutes=2), counter, ("track", "priority"))
    print(
        f"first sight: track {first['track'][0]:.2f} s ({first['track'][2]:,} rows), "
        f"priority {first['priority'][0]:.2f} s ({first['priority'][2]:,} grown)"
    )
    mark_handled(engine)
    t0 = time.perf_counter()
    catch_up = run_all_sweeps(engine, cfg, NOW)
    changed = {k: v for k, v in catch_up.items() if v}
    print(f"catch-up run (the last day's breaches): {time.perf_counter() - t0:.2f} s, {changed}")
    runs = [timed_run(engine, cfg, NOW + timedelta(minutes=m), counter) for m in (1, 2, 3)]
    print(f"{'sweep':<12} {'wall s':>7} {'cpu s':>7} {'changed':>8} {'statements':>10}")
    wall = cpu = 0.0
    for name, _ in SWEEPS:
        w = statistics.median(r[name][0] for r in runs)
        c = statistics.median(r[name][1] for r in runs)
        wall, cpu = wall + w, cpu + c
        changed_n = statistics.median(r[name][2] for r in runs)
        stmts = max(r[name][3] for r in runs)
        print(f"{name:<12} {w:>7.3f} {c:>7.3f} {changed_n:>8.0f} {stmts:>10}")
    print(f"{'all':<12} {wall:>7.3f} {cpu:>7.3f}")
    t0 = time.perf_counter()
    with engine.begin() as conn:
        sweep_track(conn, cfg, NOW + timedelta(minutes=4), full=True)
    print(f"track with a full resync (at start, then hourly): {time.perf_counter() - t0:.3f} s")
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--pg", default="", help="a PostgreSQL URL (an empty database), or 'auto'")
    ap.add_argument("--no-sqlite", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    server = None
    if args.pg == "auto":
        from tests.servers import Postgres

        server = Postgres()
    try:
        for n in sizes:
            if not args.no_sqlite:
                with tempfile.TemporaryDirectory(prefix="mg-sweeps-") as tmp:
                    bench_size(f"sqlite:///{tmp}/bench.db", n, Path(tmp))
            if server is not None:
                name = f"bench_{n}"
                url = server.create_database(name)
                with tempfile.TemporaryDirectory(prefix="mg-sweeps-") as tmp:
                    bench_size(url, n, Path(tmp))
                server.drop_database(name)
            elif args.pg:
                with tempfile.TemporaryDirectory(prefix="mg-sweeps-") as tmp:
                    bench_size(args.pg, n, Path(tmp), reset=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
