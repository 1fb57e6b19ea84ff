"""PostgreSQL stopped and started again while mail arrives over SMTP: the daemon keeps
answering 250 (after the spool fsync), reports the database as failing, `mailgate stats`
says so, and once the database is back every acknowledged message is one article.

A private PostgreSQL cluster per test (the session one is shared: never stop it).
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate.cli.main import main as cli_main
from mailgate.db.models import Article
from tests.harness import load, message, running, wait_until, write_config
from tests.servers import Postgres, SmtpSink, require


class Sender:
    """Sends one message per SMTP session until stopped; remembers what got a 250."""

    def __init__(self, port: int):
        self.port = port
        self.acked: list[str] = []
        self.refused = 0
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.halt.is_set():
            n += 1
            mid = f"<outage-{n}@example.com>"
            raw = message(message_id=mid, subject=f"question {n}", sender=f"c{n}@example.com")
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
                    s.sendmail(f"c{n}@example.com", ["support@example.test"], raw)
                self.acked.append(mid)
            except (smtplib.SMTPException, OSError):
                self.refused += 1
            time.sleep(0.02)

    def start(self) -> Sender:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(60)


def _database_state(d) -> bool | None:  # type: ignore[no-untyped-def]
    for s in d.daemon.health.snapshot():
        if s.name == "database":
            return s.ok
    return None


def test_postgres_restarted_during_ingestion_loses_nothing_acknowledged(
    tmp_path: Path, smtp_sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    require("postgres")
    # durable: with synchronous_commit off (the other tests' setting) an immediate shutdown
    # forgets the last commits, after mailgate removed their spool files (docs/scaling.md)
    pg = Postgres(durable=True)
    try:
        cfg = load(
            write_config(
                tmp_path,
                relay_port=smtp_sink.port,
                database_url=pg.url,
                main_extra="[database]\nconnect_timeout_seconds = 2\n",
            )
        )
        with running(cfg) as d:
            sender = Sender(d.port).start()
            wait_until(lambda: len(sender.acked) >= 10, 30, "mail before the outage")
            wait_until(lambda: _database_state(d) is True, 30, "the database reported ok")
            pg.pause()
            before = len(sender.acked)
            wait_until(lambda: len(sender.acked) >= before + 20, 60, "250s while it is down")
            wait_until(lambda: _database_state(d) is False, 30, "the database reported failing")
            capsys.readouterr()
            assert cli_main(["--config", str(cfg.path), "stats"]) == 1
            said = capsys.readouterr().out
            assert "database: unreachable" in said and "spool waiting" in said
            during = len(sender.acked) - before
            pg.resume()
            after_outage = len(sender.acked)
            wait_until(lambda: len(sender.acked) >= after_outage + 10, 60, "mail after it")
            sender.stop()
            acked = set(sender.acked)

            def stored() -> Counter[str]:
                with d.engine.connect() as conn:
                    return Counter(
                        conn.scalars(select(Article.message_id).where(Article.kind == "inbound"))
                    )

            wait_until(lambda: set(stored()) >= acked, 180, "the spool caught up")
            wait_until(lambda: _database_state(d) is True, 60, "the database reported ok again")
            articles = stored()
        assert set(articles) == acked  # every acknowledged message, and nothing else
        assert all(n == 1 for n in articles.values())  # each exactly once
        assert sender.refused == 0  # the listener never needed the database
        print(
            f"\n{len(acked)} messages acknowledged, {during} while PostgreSQL was down; "
            f"all {len(articles)} stored once after it returned"
        )
    finally:
        pg.stop()
