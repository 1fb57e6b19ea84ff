"""/metrics and /healthz scraped after a known run, compared with `mailgate stats`.

A daemon with the [http] port on, a relay sink that refuses the first transaction (one
outbox row failed), a governor cap that holds acknowledgements, one poison message (the
shunt), SMTP mail to two queues and IMAP mail from a real Dovecot. Then the relay goes
away: the sender reports failing and /healthz turns 503.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import harness
from tests.integration.test_imap import PASSWORD
from tests.integration.test_imap import message as imap_message
from tests.reliability.test_poison import JUNK
from tests.servers import Dovecot, SmtpSink, free_port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def healthz(port: int) -> tuple[int, dict]:
    try:
        answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    return answer.status, json.loads(answer.read())


def stats_rows(config: Path) -> dict[str, str]:
    """`mailgate stats` as printed: first column -> second column, from every table."""
    run = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "mailgate"), "--config", str(config), "stats"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    )
    rows = {}
    for line in run.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) >= 4 and cells[1]:
            rows[cells[1]] = cells[2]
    return rows


def test_metrics_after_a_known_run_match_stats(
    tmp_path: Path, dovecot: Dovecot, imap_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sink = SmtpSink()
    sink.fail("mail", 550)  # the first relay transaction is refused for good: one failed row
    http = free_port()
    imap = (
        f'\n[imap]\nhost = "{dovecot.host}"\nport = {dovecot.port}\ntls = "none"\n'
        f'user = "{imap_user}"\npassword_file = "../password"\nmove_to = "Archive"\n'
    )
    path = harness.write_config(
        tmp_path,
        relay_port=sink.port,
        queue_extra={"sales": imap},
        main_extra=f"[http]\nenabled = true\nport = {http}\n[governor]\nack_per_queue_minute = 3\n",
    )
    (path.parent / "password").write_text(PASSWORD)
    mailbox = f"sales/{imap_user}@{dovecot.host}:{dovecot.port}/INBOX"
    try:
        with harness.running(harness.load(path)) as d:
            assert d.daemon.http_port == http
            for n in range(5):
                d.send(harness.message(sender=f"c{n}@customers.example", subject=f"s{n}"))
            d.send(harness.message(to="billing@example.test"), rcpts=["billing@example.test"])
            d.send(JUNK["binary"], sender="junk@junk.example")
            dovecot.append(imap_user, imap_message(1, to="sales@example.test", tag="obs"))
            # 7 tickets (a failed row adds a system article, so articles are no measure)
            harness.wait_until(lambda: len(harness.tickets(d.engine)) == 7, 30, "7 tickets")
            harness.wait_until(lambda: d.daemon.spool.pending() == 0, 10, "an empty spool")
            harness.wait_until(
                lambda: all(
                    r.status in ("sent", "failed", "held") for r in harness.outbox(d.engine)
                ),
                30,
                "the outbox to settle",
            )
            m = scrape(http)
            rows = stats_rows(path)
            status, doc = healthz(http)

            def metric(name: str, **labels: str) -> float:
                return m[(name, tuple(sorted(labels.items())))]

            # what the run put where, as the metrics say
            assert metric("mailgate_spool_depth") == 0
            assert metric("mailgate_shunt_messages") == 1
            assert metric("mailgate_intake_messages_total", queue="support", source="smtp") == 5
            assert metric("mailgate_intake_messages_total", queue="billing", source="smtp") == 1
            assert metric("mailgate_intake_messages_total", queue="sales", source="imap") == 1
            statuses = [r.status for r in harness.outbox(d.engine)]
            for st in ("pending", "held", "failed", "sent"):
                assert metric("mailgate_outbox_messages", status=st) == statuses.count(st)
            assert statuses.count("failed") == 1 and statuses.count("held") >= 1
            assert metric("mailgate_imap_connected", mailbox=mailbox) == 1
            for part in ("worker", "sender", f"imap:{mailbox}"):
                assert metric("mailgate_component_ok", component=part) == 1
                assert (
                    metric("mailgate_component_last_success_timestamp_seconds", component=part) > 0
                )

            # ... and as `mailgate stats` prints them
            assert rows["spool waiting"] == "0" and rows["shunt"] == "1"
            pending, sent, failed = (
                int(x) for x in rows["outbox pending / sent / failed"].split(" / ")
            )
            held, _dropped = (int(x) for x in rows["outbox held / dropped"].split(" / "))
            assert (pending, sent, failed, held) == tuple(
                int(metric("mailgate_outbox_messages", status=st))
                for st in ("pending", "sent", "failed", "held")
            )
            assert rows["intake support smtp"] == "5" and rows["intake sales imap"] == "1"
            assert rows["intake billing smtp"] == "1"
            assert rows["worker"].startswith("ok, last success 20")
            assert rows[f"imap {mailbox}"] == "connected"

            assert status == 200 and doc["status"] == "ok"
            assert {c["name"] for c in doc["components"]} >= {"worker", "sender", f"imap:{mailbox}"}

            # the shunted message: one log line, with its step and reason
            shunted = [r for r in caplog.records if "shunted at" in r.getMessage()]
            assert len(shunted) == 1 and "shunted at parse:" in shunted[0].getMessage()

            # the relay goes away: the sender reports failing, /healthz says 503
            sink.stop()
            late = harness.message(sender="late@customers.example", to="billing@example.test")
            d.send(late, rcpts=["billing@example.test"])  # its ack: under billing's cap
            harness.wait_until(lambda: healthz(http)[0] == 503, 30, "/healthz to fail")
            sender = next(c for c in healthz(http)[1]["components"] if c["name"] == "sender")
            assert not sender["ok"] and "deferred" in sender["detail"]
            assert stats_rows(path)["sender"].startswith("FAILING")
    finally:
        sink.stop()
