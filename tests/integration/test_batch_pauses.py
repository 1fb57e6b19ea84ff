"""Bounce pauses read once per batch (store/addresses.read_pauses) hold what one read per
mail held: a bounce processed earlier in a batch pauses a later acknowledgement in the
same batch, and a pause set before the batch is found by the batch's read. SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailgate.bounces.report import Recipient
from mailgate.config.machine_mail import BounceSettings
from mailgate.spool import Envelope
from mailgate.store.addresses import paused_until, read_pauses, record_report
from mailgate.store.batch import batch_state
from tests.harness import load, message, offline, outbox, write_config
from tests.integration.test_machine_mail import CUSTOMER, rebuild

SMTP = Envelope(source="smtp", mail_from=CUSTOMER, rcpt_tos=("support@example.test",))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_url") if request.param == "postgres" else ""


def _acks(engine) -> list[tuple[str, bool]]:  # type: ignore[no-untyped-def]
    """Each acknowledgement's status, and whether a bounce pause held it."""
    return [(r.status, "paused until" in r.last_error) for r in outbox(engine) if r.kind == "ack"]


@pytest.mark.parametrize("size", [1, 64])
def test_a_bounce_earlier_in_the_batch_holds_a_later_ack_in_it(
    tmp_path: Path, database_url: str, size: int
) -> None:
    engine, spool, worker = offline(load(write_config(tmp_path, database_url=database_url)))
    spool.put(message(sender=CUSTOMER, subject="My printer"), SMTP)
    assert worker.process_batch(size).stored == 1
    (ack,) = outbox(engine)
    # one batch: the bounce of that ack (to its VERP address), then the customer again
    bounce = rebuild("deltachat__posteo_ndn.eml", "verp", to=ack.mail_from, message_id=None)
    spool.put(bounce, Envelope(source="smtp", rcpt_tos=(ack.mail_from,)))
    spool.put(message(sender=CUSTOMER, subject="Another problem"), SMTP)
    while worker.process_batch(size).handled:
        pass
    # and a later batch finds the pause in its read ahead
    spool.put(message(sender=CUSTOMER, subject="Third problem"), SMTP)
    assert worker.process_batch(size).stored == 1
    assert _acks(engine) == [("pending", False), ("held", True), ("held", True)]


def test_the_read_ahead_holds_failing_addresses_and_follows_a_report_in_the_batch(
    tmp_path: Path, database_url: str
) -> None:
    engine, _, _ = offline(load(write_config(tmp_path, database_url=database_url)))
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    settings = BounceSettings()
    failed = Recipient("Hard@Example.org", "failed", "5.1.1", "no such user")
    delayed = Recipient("slow@example.org", "delayed", "4.4.1", "later")
    with engine.begin() as conn:
        until = record_report(conn, failed, None, now, settings)
        record_report(conn, delayed, None, now, settings)  # noted, not paused
    assert until == now + timedelta(hours=settings.hard_pause_hours)
    later = Recipient("late@example.org", "failed", "4.2.2", "mailbox full")
    with engine.begin() as conn, batch_state(conn) as batch:
        read_pauses(conn, batch, ["hard@example.org", "SLOW@example.org", "late@example.org"])
        assert batch.pauses == {"hard@example.org": until}
        assert batch.pauses_read == {"hard@example.org", "slow@example.org", "late@example.org"}
        assert paused_until(conn, "HARD@example.org") == until
        assert paused_until(conn, "slow@example.org") is None
        assert paused_until(conn, "late@example.org") is None
        soft = record_report(conn, later, None, now, settings)  # a bounce inside the batch
        assert soft == now + timedelta(hours=settings.soft_pause_hours)
        assert paused_until(conn, "late@example.org") == soft
    with engine.begin() as conn:  # the same from the database, without a batch
        assert paused_until(conn, "late@example.org") == soft
        assert paused_until(conn, "hard@example.org") == until
        assert paused_until(conn, "slow@example.org") is None
