"""The spool: durable put, in-order claim, failure counting and the shunt."""

from __future__ import annotations

import threading

import pytest

from mailgate.durable import GroupFsync
from mailgate.spool import Envelope, Spool, SpoolLocked


def test_put_claim_done(tmp_path):
    s = Spool(tmp_path)
    names = [s.put(f"m{i}".encode(), Envelope(source="pipe", rcpt_tos=("a@x",))) for i in range(5)]
    assert s.pending() == 5 and not list((tmp_path / "tmp").iterdir())
    got = s.claim(3)
    assert [e.name for e in got] == names[:3]
    assert s.read(got[0]) == b"m0" and got[0].envelope.rcpt_tos == ("a@x",)
    s.done(got)
    s.flush()
    assert s.pending() == 2
    assert [e.name for e in s.claim(10)] == names[3:]


def test_failures_then_shunt_then_retry(tmp_path):
    s = Spool(tmp_path)
    name = s.put(b"x", Envelope(source="smtp"))
    for attempt in (1, 2):
        (e,) = s.claim(1)
        assert s.fail(e, "pipeline", f"boom {attempt}", max_attempts=3) is False
    (e,) = s.claim(1)
    assert e.envelope.attempts == 2
    assert s.fail(e, "pipeline", "boom 3", max_attempts=3) is True
    assert s.pending() == 0
    (sh,) = s.shunted()
    assert sh.name == name and [f["reason"] for f in sh.envelope.failures] == [
        "boom 1",
        "boom 2",
        "boom 3",
    ]
    s.shunt_retry(name)
    (e,) = s.claim(1)
    assert e.envelope.attempts == 0 and len(e.envelope.failures) == 3
    s.shunt_now(e, "parse", "not mail")
    s.shunt_discard(name)
    assert s.shunted() == [] and s.pending() == 0
    with pytest.raises(FileNotFoundError):
        s.shunt_retry(name)


def test_one_worker_per_spool_and_recovery(tmp_path):
    a, b = Spool(tmp_path), Spool(tmp_path)
    a.lock()
    with pytest.raises(SpoolLocked):
        b.lock()
    a.unlock()
    b.lock()
    # leftovers of an interrupted write and of an old-style claimed/ directory
    (tmp_path / "tmp" / "half.eml").write_bytes(b"partial")
    (tmp_path / "claimed" / "old.eml").write_bytes(b"old")
    (tmp_path / "claimed" / "old.json").write_bytes(Envelope(source="smtp").to_json())
    assert b.recover() == 1
    assert not list((tmp_path / "tmp").iterdir())
    assert [e.name for e in b.claim(5)] == ["old"]


def test_a_message_whose_writer_died_before_its_envelope_is_routed_by_headers(
    tmp_path, monkeypatch
):
    from mailgate import spool as spool_mod
    from tests.harness import load, message, offline, tickets, write_config

    cfg = load(write_config(tmp_path))
    engine, s, worker = offline(cfg)
    # put() died after the message landed, before its envelope did: never acknowledged
    (cfg.spool_dir / "incoming" / "00000000000000000001-1-abc.eml").write_bytes(
        message(to="billing@example.test")
    )
    assert s.claim(10) == []  # young: a put() may still be finishing
    monkeypatch.setattr(spool_mod, "ORPHAN_GRACE_SECONDS", 0.0)
    (entry,) = s.claim(10)
    assert entry.envelope.source == "recovered"
    s._backlog.appendleft(entry.name)  # give it back to the worker
    assert worker.drain().stored == 1
    assert [t.queue for t in tickets(engine)] == ["billing"]


def test_envelopes_without_their_message_are_removed_at_start(tmp_path):
    s = Spool(tmp_path)
    (tmp_path / "incoming" / "x.json").write_bytes(Envelope(source="smtp").to_json())
    (tmp_path / "shunt" / "y.json").write_bytes(Envelope(source="smtp").to_json())
    s.recover()
    assert not list((tmp_path / "incoming").iterdir())
    assert not list((tmp_path / "shunt").iterdir())


def test_a_traceback_is_kept_once_with_the_attempts_it_covered(tmp_path):
    s = Spool(tmp_path)
    s.put(b"x", Envelope(source="smtp"))
    tries = [("store", "A"), ("store", "A"), ("ack", "A"), ("store", "B"), ("store", "A")]
    for stage, text in tries:
        (e,) = s.claim(1)
        s.fail(e, stage, f"Err: {text}", max_attempts=10, traceback=f"Traceback {text}")
    (e,) = s.claim(1)
    env = Envelope.from_json(e.envelope.to_json())
    assert [f["stage"] for f in env.failures] == [stage for stage, _ in tries]
    assert env.tracebacks == (
        {"stage": "store", "text": "Traceback A", "attempts": [1, 2, 5]},
        {"stage": "ack", "text": "Traceback A", "attempts": [3]},
        {"stage": "store", "text": "Traceback B", "attempts": [4]},
    )


def test_an_envelope_written_before_tracebacks_were_kept_still_reads(tmp_path):
    old = b'{"source": "smtp", "attempts": 1, "failures": [{"stage": "pipeline", "reason": "x"}]}'
    env = Envelope.from_json(old)
    assert env.tracebacks == () and env.failures[0]["stage"] == "pipeline"


def _group(tmp_path, fail_first: bool = False):  # type: ignore[no-untyped-def]
    """A GroupFsync whose fsync blocks until released, recording when each one began."""
    started, release = threading.Semaphore(0), threading.Event()
    calls: list[int] = []

    def fsync(path) -> None:  # type: ignore[no-untyped-def]
        calls.append(len(calls))
        started.release()
        release.wait()
        if fail_first and len(calls) == 1:
            raise OSError("injected fsync failure")

    return GroupFsync(tmp_path, fsync), started, release, calls


def test_writers_waiting_during_an_fsync_share_the_next_one(tmp_path):
    group, started, release, calls = _group(tmp_path)
    done: list[int] = []
    first = threading.Thread(target=lambda: (group.sync(), done.append(0)))
    first.start()
    assert started.acquire(timeout=10)  # the first writer's fsync is running
    others = [
        threading.Thread(target=lambda i=i: (group.sync(), done.append(i))) for i in range(1, 9)
    ]
    for t in others:
        t.start()
    while group._asked < 9:  # every writer has renamed and is waiting
        threading.Event().wait(0.001)
    assert done == []  # nobody returns before an fsync that began after its rename
    release.set()
    for t in (first, *others):
        t.join(10)
    assert sorted(done) == list(range(9))
    assert group.fsyncs == len(calls) == 2  # one for the first, one shared by the other 8


def test_a_failed_fsync_covers_nobody(tmp_path):
    group, started, release, calls = _group(tmp_path, fail_first=True)
    errors: list[BaseException] = []

    def put() -> None:
        try:
            group.sync()
        except OSError as e:
            errors.append(e)

    first = threading.Thread(target=put)
    first.start()
    assert started.acquire(timeout=10)
    second = threading.Thread(target=put)
    second.start()
    while group._asked < 2:
        threading.Event().wait(0.001)
    release.set()
    first.join(10)
    second.join(10)
    assert len(errors) == 1  # the first writer's put fails: its source is not acknowledged
    assert len(calls) == 2  # the second did its own fsync instead of trusting the failed one
    assert group.fsyncs == 1


def test_put_shares_the_directory_fsync(tmp_path):
    s = Spool(tmp_path)
    s.put(b"m", Envelope(source="pipe"))
    assert s.incoming_sync.fsyncs == 1 and s.pending() == 1
