"""The daemon leaves what its start-up made out of the collector's full walks once it is
started (mailgate/heap.py) and puts it back when it stops."""

from __future__ import annotations

import gc

from tests.harness import load, message, running, wait_until, write_config


def test_the_daemon_freezes_once_started_and_thaws_when_it_stops(tmp_path):
    cfg = load(write_config(tmp_path))
    with running(cfg) as d:
        assert gc.get_freeze_count() > 0
        d.send(message(subject="after the freeze"))  # mail is processed as before
        worker = d.daemon._worker
        assert worker is not None
        wait_until(lambda: sum(worker.intake.snapshot().values()) >= 1, 30, "the message stored")
    assert gc.get_freeze_count() == 0
