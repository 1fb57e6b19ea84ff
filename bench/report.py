"""How long `mailgate report` takes for a month of many tickets, and its peak memory.

    .venv/bin/python bench/report.py                    # 100,000 tickets in November 2026
    .venv/bin/python bench/report.py --tickets 20000 --no-floor

The month: N tickets in three queues with [sla] (UTC business hours), created evenly over
November 2026, N/10 in October (for the trends); 85 % answered (a fifth of those by two
agents), 70 % resolved, 5 % reopened, 4 % escalated, 20 % rated; titles and first mails
from 60 recurring issues with variations (the repetitive issues) plus 30 % one-off
questions (a vocabulary of 3,000 made-up words); 1-3 tags out of 40, 12 categories,
complexity lower/medium/hard/none. Written with bulk inserts into a SQLite file (WAL)
created by the migrations.

Then `mailgate report --month 2026-11 --json` and `--html FILE`, each in a fresh process:
wall seconds and the process's peak RSS; the bare floor (shared/bench/floor.py, 2,000
generated mails) in the same run, and the load average. No assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench import e2e, ingest  # noqa: E402
from mailgate.db import engine as db  # noqa: E402
from mailgate.db.models_satisfaction import satisfaction_surveys  # noqa: E402
from mailgate.store.articles import articles  # noqa: E402
from mailgate.store.audit import audit_events  # noqa: E402
from mailgate.store.tickets import ticket_tags, tickets  # noqa: E402
from tests.harness import write_config  # noqa: E402
from tests.report_seed import article_rows, ticket_values  # noqa: E402

START = datetime(2026, 11, 1, tzinfo=UTC)
QUEUES = ("support", "billing", "sales")
AGENTS = [f"agent{i:02d}" for i in range(20)]
TAGS = [f"tag{i:02d}" for i in range(40)]
CATEGORIES = [f"category{i:02d}" for i in range(12)]
COMPLEXITY = ("lower", "medium", "hard", "")
WORDS = "printer invoice login password dns domain mailbox backup server ssl certificate "
WORDS += "refund upgrade quota spam website database timeout outlook smtp imap billing "
WORDS += "renewal migration firewall webmail forwarding alias redirect cpanel php cron"
# a realistic vocabulary: the words above and 3,000 made-up ones (letters only)
VOCAB = WORDS.split() + [
    "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=7)) for i in range(3000)
]
BATCH = 5000


def issues(rng: random.Random) -> list[tuple[str, str]]:
    return [
        (" ".join(rng.sample(VOCAB[:30], 3)).capitalize(), " ".join(rng.sample(VOCAB, 12)))
        for _ in range(60)
    ]


def text_of(rng: random.Random, known: list[tuple[str, str]]) -> tuple[str, str]:
    if rng.random() < 0.3:  # a one-off question
        return " ".join(rng.sample(VOCAB, 4)).capitalize(), " ".join(rng.sample(VOCAB, 10))
    title, body = rng.choice(known)
    return title, body + f" order {rng.randrange(10**6)} " + rng.choice(VOCAB)


def rows_for(tid: int, created: datetime, rng: random.Random, known, month: bool) -> dict:
    title, body = text_of(rng, known)
    queue = QUEUES[tid % 3]
    out: dict[str, list[dict]] = {k: [] for k in ("t", "a", "tag", "e", "s")}
    answers = []
    if rng.random() < 0.85:
        first = created + timedelta(minutes=rng.expovariate(1 / 300))
        answers.append((rng.choice(AGENTS), first))
        if rng.random() < 0.2:
            answers.append((rng.choice(AGENTS), first + timedelta(hours=rng.uniform(1, 48))))
    done = (
        answers[-1][1] + timedelta(hours=rng.uniform(0, 24))
        if answers and rng.random() < 0.82
        else None
    )
    values = ticket_values(
        queue=queue, created=created, title=title, requester=f"c{tid}@example.com",
        answers=answers, done=done, priority=rng.choice((30, 50, 50, 75, 95)),
        complexity=rng.choice(COMPLEXITY), category=rng.choice(CATEGORIES),
    )  # fmt: skip
    out["t"].append({"id": tid, **values})
    out["a"] = article_rows(
        tid, title, body, f"c{tid}@example.com", created, answers, f"{queue}@example.test"
    )
    out["tag"] = [{"ticket_id": tid, "tag": t} for t in rng.sample(TAGS, rng.randint(1, 3))]
    if month and answers:
        when = answers[-1][1]
        if rng.random() < 0.05:
            out["e"].append(
                {
                    "ticket_id": tid,
                    "at": when,
                    "actor": "mailgate",
                    "action": "reopened",
                    "detail": {},
                }
            )
        if rng.random() < 0.04:
            out["e"].append(
                {
                    "ticket_id": tid,
                    "at": when,
                    "actor": answers[0][0],
                    "action": "command",
                    "detail": {"line": "#escalate tried the usual"},
                }
            )
        if done and rng.random() < 0.25:
            out["s"].append(
                {
                    "ticket_id": tid,
                    "queue": queue,
                    "agent": answers[-1][0],
                    "requester_addr": f"c{tid}@example.com",
                    "trigger": "resolved",
                    "asked_at": done,
                    "rating": rng.choice((1, 2, 3, 4, 4, 5, 5, 5)),
                    "comment": rng.choice(("", "", "thanks", "slow")),
                    "rated_at": done,
                }
            )
    return out


def seed(url: str, n: int) -> None:
    rng = random.Random(15)
    known = issues(rng)
    engine = db.connect(url)
    tables = {
        "t": tickets,
        "a": articles,
        "tag": ticket_tags,
        "e": audit_events,
        "s": satisfaction_surveys,
    }
    month_seconds = 30 * 86400
    plan = [
        (i + 1, START - timedelta(days=31) + timedelta(seconds=rng.uniform(0, 31 * 86400)), False)
        for i in range(n // 10)
    ]
    plan += [
        (n // 10 + i + 1, START + timedelta(seconds=month_seconds * i / n), True) for i in range(n)
    ]
    for lo in range(0, len(plan), BATCH):
        batch: dict[str, list[dict]] = {k: [] for k in tables}
        for tid, created, month in plan[lo : lo + BATCH]:
            for k, v in rows_for(tid, created, rng, known, month).items():
                batch[k] += v
        with engine.begin() as conn:
            for k, table in tables.items():
                if batch[k]:
                    conn.execute(insert(table), batch[k])
    engine.dispose()


def run_report(config: Path, *extra: str) -> tuple[float, float, int, str]:
    """Wall and CPU seconds of one `mailgate report` process, and the peak RSS (MiB) of
    the runs so far (on a loaded machine the CPU seconds are the steadier figure)."""
    cmd = [sys.executable, "-m", "mailgate", "--config", str(config), "report"]
    cmd += ["--month", "2026-11", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss // 1024, out


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--no-floor", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mg-report-") as d:
        root = Path(d)
        url = "sqlite:///" + str(root / "db.sqlite")
        print(f"load before: {loadavg()}; cores {os.cpu_count()}")
        t0 = time.perf_counter()
        seed(url, args.tickets)
        took = time.perf_counter() - t0
        print(f"seeded {args.tickets} tickets (+{args.tickets // 10} in October) in {took:.1f} s")
        config = write_config(root, database_url=url, queue_extra={q: "[sla]\n" for q in QUEUES})
        wall, cpu, rss, out = run_report(config, "--json")
        r = json.loads(out)
        print(
            f"report --json: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss} MiB; "
            f"received {r['total']['received']}, "
            f"agents {len(r['agents'])}, repetitive issues {len(r['repetitive_issues'])} "
            f"(largest {r['repetitive_issues'][0]['count'] if r['repetitive_issues'] else 0})"
        )
        html = root / "report.html"
        wall, cpu, rss, _ = run_report(config, "--html", str(html))
        print(
            f"report --html: {wall:.1f} s wall, {cpu:.1f} s CPU, "
            f"peak RSS (max of both runs) {rss} MiB; "
            f"file {html.stat().st_size // 1024} KiB"
        )
    print(f"load after: {loadavg()}")
    if not args.no_floor:
        shared = next(
            p for p in (ingest.SHARED_BENCH, ROOT.parents[2] / "shared" / "bench") if p.exists()
        )
        ingest.SHARED_BENCH = e2e.SHARED_BENCH = shared
        with tempfile.TemporaryDirectory(prefix="mg-floor-") as d:
            f = e2e.floor(ingest.generate(Path(d) / "corpus", 2000))
        print(f"floor: {json.dumps(f)}; load {loadavg()}")


if __name__ == "__main__":
    main()
