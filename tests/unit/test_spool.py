"""The spool: durable put, in-order claim, failure counting and the shunt."""

from __future__ import annotations

import os
import threading

import pytest

from mailgate.durable import GroupFsync
from mailgate.spool import Envelope, Spool, SpoolLocked, read_waiting
from tests.spool_layout import files, put_pair, split


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
    from mailgate import spool_files as spool_mod
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


# -- one file per message (NAME.msg), and the NAME.eml + NAME.json pairs of before ------

# bytes a line-based split, a strip or a decode would change
AWKWARD = b'\n{"source": "forged"}\n\r\nSubject: \xff\xfe\x00\r\n\r\nbody\n\n\r\n\r'


def test_a_put_is_one_file_in_incoming_and_nothing_in_tmp(tmp_path):
    s = Spool(tmp_path)
    env = Envelope(source="smtp", mail_from="a@x", rcpt_tos=("b@y",), queue="billing")
    name = s.put(AWKWARD, env)
    assert files(tmp_path / "incoming") == [f"{name}.msg"] and files(tmp_path / "tmp") == []
    data = (tmp_path / "incoming" / f"{name}.msg").read_bytes()
    line, raw = data.split(b"\n", 1)
    assert raw == AWKWARD  # the bytes unchanged after the envelope's line
    assert Envelope.from_json(line)._replace(received_at=0.0) == env
    (e,) = s.claim(1)
    assert e.envelope.rcpt_tos == ("b@y",) and s.read(e) == AWKWARD
    s.done([e])
    s.flush()
    assert files(tmp_path / "incoming") == []


def test_an_envelope_line_never_holds_a_newline():
    env = Envelope(source="smtp\n", mail_from="a\r\n@x", rcpt_tos=("\n",), failures=({"r": "\n"},))
    line = env.to_line()
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert Envelope.from_json(line[:-1]) == env


def test_an_old_pair_is_claimed_with_its_envelope_and_both_files_removed(tmp_path):
    s = Spool(tmp_path)
    name = put_pair(tmp_path, b"old bytes", Envelope(source="smtp", rcpt_tos=("old@x",)))
    assert s.pending() == 1
    (e,) = s.claim(1)
    assert e.name == name and e.envelope.rcpt_tos == ("old@x",) and s.read(e) == b"old bytes"
    s.done([e])
    s.flush()
    assert files(tmp_path / "incoming") == [] and s.pending() == 0


def test_a_name_in_both_forms_is_listed_once(tmp_path):
    s = Spool(tmp_path)
    name = s.put(b"new", Envelope(source="smtp"))
    put_pair(tmp_path, b"old", Envelope(source="smtp"), name=name)
    assert s.pending() == 1 and s.claim_names(10) == [name]
    assert read_waiting(s.incoming, name).raw == b"new"


def test_a_corrupt_envelope_line_is_an_empty_envelope_with_a_warning_and_the_bytes_kept(tmp_path):
    s = Spool(tmp_path)
    name = s.put(AWKWARD, Envelope(source="smtp"))
    path = tmp_path / "incoming" / f"{name}.msg"
    path.write_bytes(b'{"source": "smtp", "attem\n' + AWKWARD)  # cut short
    got = read_waiting(s.incoming, name)
    assert got.entry.envelope == Envelope(source="unknown") and got.raw == AWKWARD
    assert "unreadable envelope" in got.warning
    assert s.fail(got.entry, "pipeline", "no queue", max_attempts=3) is False
    env, raw = split(path)
    assert raw == AWKWARD and env.source == "unknown" and env.attempts == 1


@pytest.mark.parametrize("form", ["msg", "pair"])
def test_a_retry_rewrites_the_envelope_and_keeps_the_bytes(tmp_path, form):
    s = Spool(tmp_path)
    env = Envelope(source="smtp", rcpt_tos=("a@x",))
    name = s.put(AWKWARD, env) if form == "msg" else put_pair(tmp_path, AWKWARD, env)
    for attempt in (1, 2):
        (e,) = s.claim(1)
        assert s.fail(e, "store", f"boom {attempt}", max_attempts=3, traceback="Tb") is False
    assert files(tmp_path / "tmp") == [] and files(tmp_path / "shunt") == []
    assert files(tmp_path / "incoming") == (
        [f"{name}.msg"] if form == "msg" else [f"{name}.eml", f"{name}.json"]
    )
    (e,) = s.claim(1)
    assert s.read(e) == AWKWARD
    assert e.envelope.rcpt_tos == ("a@x",) and e.envelope.attempts == 2
    assert [f["reason"] for f in e.envelope.failures] == ["boom 1", "boom 2"]
    assert e.envelope.tracebacks[0]["attempts"] == [1, 2]


@pytest.mark.parametrize("form", ["msg", "pair"])
def test_a_shunted_message_moves_with_its_reasons_and_comes_back(tmp_path, form):
    s = Spool(tmp_path)
    env = Envelope(source="smtp", rcpt_tos=("a@x",))
    name = s.put(AWKWARD, env) if form == "msg" else put_pair(tmp_path, AWKWARD, env)
    (e,) = s.claim(1)
    assert s.fail(e, "parse", "not mail", max_attempts=1) is True
    # in the shunt alone, in its form, with its reason; nothing left anywhere else
    assert files(tmp_path / "shunt") == (
        [f"{name}.msg"] if form == "msg" else [f"{name}.eml", f"{name}.json"]
    )
    assert [files(tmp_path / d) for d in ("tmp", "incoming", "claimed")] == [[], [], []]
    (sh,) = s.shunted()
    assert sh.name == name and sh.envelope.rcpt_tos == ("a@x",)
    assert [(f["stage"], f["reason"]) for f in sh.envelope.failures] == [("parse", "not mail")]
    assert s.shunt_read(name) == AWKWARD
    s.shunt_retry(name)
    assert files(tmp_path / "shunt") == [] and s.pending() == 1
    (e,) = s.claim(1)
    assert e.envelope.attempts == 0 and len(e.envelope.failures) == 1 and s.read(e) == AWKWARD
    s.shunt_now(e, "parse", "still not mail")
    (sh,) = s.shunted()
    assert [f["reason"] for f in sh.envelope.failures] == ["not mail", "still not mail"]
    s.shunt_discard(name)
    assert files(tmp_path / "shunt") == [] and s.shunted() == [] and s.pending() == 0
    for action in (s.shunt_read, s.shunt_retry, s.shunt_discard):
        with pytest.raises(FileNotFoundError):
            action(name)


def test_shunt_administration_takes_old_and_new_entries_side_by_side(tmp_path):
    s = Spool(tmp_path)
    old = "00000000000000000001-1-old"  # shunted by the previous version, as it wrote it
    failed = Envelope(source="smtp", attempts=3, failures=({"stage": "ack", "reason": "x"},))
    (tmp_path / "shunt" / f"{old}.eml").write_bytes(b"old raw")
    (tmp_path / "shunt" / f"{old}.json").write_bytes(failed.to_json())
    new = s.put(b"new raw", Envelope(source="pipe"))
    (e,) = s.claim(1)
    s.shunt_now(e, "parse", "junk")
    assert [(e.name, e.envelope.failures[-1]["reason"]) for e in s.shunted()] == [
        (old, "x"),
        (new, "junk"),
    ]
    assert (s.shunt_read(old), s.shunt_read(new)) == (b"old raw", b"new raw")
    for name in (old, new):
        s.shunt_retry(name)
    assert s.shunted() == [] and s.pending() == 2
    got = s.claim(2)
    assert [(e.name, e.envelope.attempts, s.read(e)) for e in got] == [
        (old, 0, b"old raw"),
        (new, 0, b"new raw"),
    ]
    for e in got:
        s.shunt_now(e, "parse", "again")
    s.shunt_discard(old)
    s.shunt_discard(new)
    assert files(tmp_path / "shunt") == []


def test_a_fail_cut_after_its_rewrite_leaves_the_message_in_incoming_counted(tmp_path, monkeypatch):
    """fail() rewrites the envelope in place, then moves the file: cut in between (the move
    failing here), the message is in incoming/ alone, with the failure counted."""
    s = Spool(tmp_path)
    name = s.put(AWKWARD, Envelope(source="smtp"))
    (e,) = s.claim(1)
    real = os.rename

    def rename(src, dst):  # type: ignore[no-untyped-def]
        if "shunt" in str(dst):
            raise OSError("injected: the move to the shunt")
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="injected"):
        s.fail(e, "parse", "not mail", max_attempts=1)
    monkeypatch.undo()
    assert files(tmp_path / "shunt") == [] and files(tmp_path / "tmp") == []
    env, raw = split(tmp_path / "incoming" / f"{name}.msg")
    assert raw == AWKWARD and env.attempts == 1 and env.failures[0]["reason"] == "not mail"
    (e,) = Spool(tmp_path).claim(1)
    assert Spool(tmp_path).fail(e, "parse", "not mail", max_attempts=1) is True
    assert [sh.envelope.attempts for sh in s.shunted()] == [2]


def test_a_mixed_spool_is_processed_in_spool_order_each_once(tmp_path):
    from tests.harness import article_count, load, message, offline, tickets, write_config

    cfg = load(write_config(tmp_path, batch_size=4))
    engine, s, worker = offline(cfg)
    titles = []
    for i in range(10):
        raw = message(subject=f"m{i}", to="support@example.test")
        # the envelope, not the To header, routes it: proof it was read with its envelope
        env = Envelope(source="smtp", rcpt_tos=("billing@example.test",))
        (put_pair(cfg.spool_dir, raw, env) if i % 3 == 0 else s.put(raw, env))
        titles.append(f"m{i}")
    assert s.pending() == 10
    r = worker.drain()
    assert (r.stored, r.duplicates, r.retried, r.shunted) == (10, 0, 0, 0)
    ts = sorted(tickets(engine), key=lambda t: t.id)
    assert [t.title for t in ts] == titles and {t.queue for t in ts} == {"billing"}
    assert article_count(engine) == 10
    assert [files(cfg.spool_dir / d) for d in ("tmp", "incoming", "shunt")] == [[], [], []]


def test_a_dead_shunt_retrys_copy_is_removed_at_start_and_a_fresh_one_kept(tmp_path):
    s = Spool(tmp_path)
    dead, fresh = tmp_path / "shunt" / "a.msg.new", tmp_path / "shunt" / "b.msg.new"
    dead.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(dead, (1, 1))
    s.recover()
    assert files(tmp_path / "shunt") == ["b.msg.new"] and s.shunted() == []
