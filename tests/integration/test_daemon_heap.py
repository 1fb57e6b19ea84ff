"""The daemon leaves what its start-up made out of the collector's full walks once it is
started (mailgate/heap.py) and puts it back when it stops, also when stopping fails."""

from __future__ import annotations

import gc

import pytest

from tests.harness import RunningDaemon, load, message, running, wait_until, write_config


def test_the_daemon_freezes_once_started_and_thaws_when_it_stops(tmp_path):
    cfg = load(write_config(tmp_path))
    assert gc.get_freeze_count() == 0  # the freeze below is the daemon's
    with running(cfg) as d:
        assert gc.get_freeze_count() > 0
        d.send(message(subject="after the freeze"))  # mail is processed as before
        worker = d.daemon._worker
        assert worker is not None
        wait_until(lambda: sum(worker.intake.snapshot().values()) >= 1, 30, "the message stored")
    assert gc.get_freeze_count() == 0


def test_the_daemon_thaws_when_its_stop_path_fails(tmp_path):
    cfg = load(write_config(tmp_path))
    assert gc.get_freeze_count() == 0
    d = RunningDaemon(cfg).start()
    assert gc.get_freeze_count() > 0
    keyrings = d.daemon.keyrings
    closing = keyrings.close

    def failing_close() -> None:
        closing()
        raise RuntimeError("a keyring would not close")

    keyrings.close = failing_close  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="would not close"):
        d.stop()
    assert gc.get_freeze_count() == 0
