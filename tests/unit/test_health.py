from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from mailgate.health import Health


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_a_failure_keeps_the_last_success_and_starts_its_own_since():
    clock = FakeClock()
    health = Health(clock)
    health.succeeded("worker")
    first = clock.now
    clock.tick(5)
    health.succeeded("worker", "batch of 3")
    clock.tick(5)
    health.failed("worker", "database is locked")
    (state,) = health.snapshot()
    assert (state.ok, state.detail) == (False, "database is locked")
    assert state.last_success == first + timedelta(seconds=5)
    assert state.since == first + timedelta(seconds=10)
    assert not health.healthy()


def test_since_stays_while_the_state_does_not_change():
    clock = FakeClock()
    health = Health(clock)
    health.succeeded("sender")
    start = clock.now
    clock.tick(30)
    health.succeeded("sender")
    (state,) = health.snapshot()
    assert state.since == start and state.last_success == clock.now
    assert health.healthy()


def test_forget_removes_a_stopped_part_and_snapshot_is_sorted():
    health = Health()
    for name in ("imap:support", "database", "imap:billing"):
        health.succeeded(name)
    health.failed("imap:billing", "connection refused")
    health.forget("imap:billing")
    assert [s.name for s in health.snapshot()] == ["database", "imap:support"]
    assert health.healthy()


def test_reports_from_many_threads_all_land():
    health = Health()

    def report(i: int) -> None:
        for _ in range(200):
            health.succeeded(f"poller-{i}")

    threads = [threading.Thread(target=report, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(health.snapshot()) == 8
