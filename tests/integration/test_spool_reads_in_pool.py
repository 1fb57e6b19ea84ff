"""The spool's files read where the batch is parsed (pipeline/pool.py, spool.read_waiting):
in a parse process for a batch of MIN_FOR_POOL or more, in the worker's process for a
smaller one or with `parse_processes = 0`, with the same outcome either way. What reading
finds wrong is logged by the worker's process (a parse process does not log)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from mailgate.pipeline.pool import DIED, MIN_FOR_POOL, PreparePool, prepare_chunk
from mailgate.pipeline.prepare import Settings, prepare
from mailgate.spool import Envelope, Spool
from tests.harness import load, message, offline, tickets, write_config
from tests.spool_layout import put_pair

SUPPORT = Envelope(source="smtp", rcpt_tos=("support@example.test",))
UNREADABLE = "has an unreadable envelope"


def _spooled(root: Path, processes: int, n: int, batch_size: int = 32, form: str = "msg"):  # type: ignore[no-untyped-def]
    """A worker with `processes` parse processes and `n` distinct messages spooled, as
    NAME.msg files or (form "pair") as the previous version wrote them."""
    cfg = load(write_config(root, batch_size=batch_size))
    engine, spool, worker = offline(cfg)
    worker.pipeline.pool = PreparePool(processes)
    put = spool.put if form == "msg" else lambda raw, env: put_pair(spool.root, raw, env)
    names = [put(message(message_id=f"<m{i}@example.com>"), SUPPORT) for i in range(n)]
    return engine, spool, worker, names


def _incoming(spool: Spool) -> Path:
    return Path(spool.incoming)


def _drained_with_one_unreadable(root: Path, processes: int, form: str):  # type: ignore[no-untyped-def]
    """A batch of `form` ("msg" or an old "pair") whose sixth message's file is made a
    directory (listed like a message, but reading it fails, even for root), drained: the
    engine, the spool, the drain's result and the one shunted entry (the sixth)."""
    engine, spool, worker, names = _spooled(root, processes, MIN_FOR_POOL + 2, form=form)
    path = _incoming(spool) / f"{names[5]}.{'msg' if form == 'msg' else 'eml'}"
    path.unlink()
    path.mkdir()
    r = worker.drain()
    [entry] = spool.shunted()
    assert entry.name == names[5]
    return engine, spool, r, entry


def _failures(entry) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Each failed try's stage and the exception's name in its reason."""
    return [(f["stage"], f["reason"].split(":")[0]) for f in entry.envelope.failures]


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.parametrize("form", ["msg", "pair"])
@pytest.mark.parametrize("processes", [0, 1])
def test_an_unreadable_envelope_is_an_empty_one_and_the_worker_logs_it(
    tmp_path, caplog, processes, form
):
    engine, spool, worker, names = _spooled(tmp_path, processes, MIN_FOR_POOL + 2, form=form)
    if form == "msg":  # its envelope line corrupt, its bytes intact after it
        path = _incoming(spool) / f"{names[3]}.msg"
        raw = path.read_bytes().partition(b"\n")[2]
        path.write_bytes(b"{not json\n" + raw)
    else:
        (_incoming(spool) / f"{names[3]}.json").write_bytes(b"{not json")
    caplog.set_level(logging.WARNING)

    r = worker.drain()

    # no envelope to route by: an "unknown" source is not routed by its headers
    assert (r.stored, r.retried + r.shunted) == (MIN_FOR_POOL + 1, 1)
    [failed] = [e for e in (*spool.shunted(), *spool.claim(10)) if e.name == names[3]]
    assert failed.envelope.source == "unknown"
    assert [w.split(" has ")[0] for w in _warnings(caplog, UNREADABLE)] == [f"spool: {names[3]}"]
    assert len(tickets(engine)) == MIN_FOR_POOL + 1
    if form == "msg":  # never lost: the bytes kept whole behind the failure's envelope
        kept = spool.shunt_read(names[3]) if r.shunted else spool.read(failed)
        assert kept == raw
        assert (spool.root / ("shunt" if r.shunted else "incoming") / f"{names[3]}.msg").exists()


def test_a_msg_file_without_an_envelope_line_is_all_message(tmp_path, caplog):
    """A .msg whose first line is not an envelope (not `{`): the whole file is the message."""
    engine, spool, worker, names = _spooled(tmp_path, 0, 2)
    path = _incoming(spool) / f"{names[0]}.msg"
    raw = path.read_bytes().partition(b"\n")[2]
    path.write_bytes(raw)
    caplog.set_level(logging.WARNING)

    r = worker.drain()

    assert r.stored == 1 and r.retried + r.shunted == 1
    [failed] = [e for e in (*spool.shunted(), *spool.claim(10)) if e.name == names[0]]
    assert failed.envelope.source == "unknown"
    assert _warnings(caplog, "has no envelope")
    assert (spool.shunt_read(names[0]) if r.shunted else spool.read(failed)) == raw


@pytest.mark.parametrize("processes", [0, 1])
def test_a_msg_file_that_cannot_be_read_is_shunted_with_why(tmp_path, processes):
    """Its envelope is inside it: no failure can be written into it, so it goes to the
    shunt as it is, at the first try, where the listing shows why it cannot be read."""
    engine, spool, r, entry = _drained_with_one_unreadable(tmp_path, processes, "msg")

    assert (r.stored, r.retried, r.shunted) == (MIN_FOR_POOL + 1, 0, 1)
    assert (spool.root / "shunt" / f"{entry.name}.msg").is_dir()
    assert _failures(entry) == [("read", "IsADirectoryError")]
    assert len(tickets(engine)) == MIN_FOR_POOL + 1 and spool.pending() == 0


@pytest.mark.parametrize("processes", [0, 1])
def test_an_old_message_that_cannot_be_read_fails_at_read_alone(tmp_path, processes):
    engine, spool, r, entry = _drained_with_one_unreadable(tmp_path, processes, "pair")

    # tried again in the same drain until the shunt: a failure of its own each time
    assert (r.stored, r.retried, r.shunted) == (MIN_FOR_POOL + 1, 2, 1)
    assert _failures(entry) == [("read", "IsADirectoryError")] * 3
    assert len(tickets(engine)) == MIN_FOR_POOL + 1


@pytest.mark.parametrize("processes", [0, 1])
def test_a_message_whose_envelope_is_still_coming_waits_and_the_rest_goes_on(tmp_path, processes):
    engine, spool, worker, names = _spooled(tmp_path, processes, MIN_FOR_POOL + 2, form="pair")
    envelope = _incoming(spool) / f"{names[0]}.json"
    held = envelope.read_bytes()
    envelope.unlink()  # an old put() between its two renames: young, so not yet an orphan

    assert worker.drain().stored == MIN_FOR_POOL + 1
    assert spool.pending() == 1 and spool.shunted() == []

    envelope.write_bytes(held)  # the put() finished
    assert worker.drain().stored == 1
    assert spool.pending() == 0 and len(tickets(engine)) == MIN_FOR_POOL + 2


def test_batches_of_only_messages_not_there_yet_give_way_to_the_ones_behind(tmp_path):
    """A claim takes names only: when a whole batch turns out not there yet (envelopes
    still coming), the drain goes on with the next batch instead of stopping, and it
    ends once only those wait (no claiming them round and round)."""
    engine, spool, worker, names = _spooled(tmp_path, 1, 10, batch_size=MIN_FOR_POOL)
    for i in range(2 * MIN_FOR_POOL):  # older than every message: listed first
        eml = _incoming(spool) / f"{i:020d}-1-young.eml"
        eml.write_bytes(message(message_id=f"<young{i}@example.com>"))

    r = worker.drain()

    assert (r.stored, r.retried, r.shunted) == (10, 0, 0)
    assert spool.pending() == 2 * MIN_FOR_POOL  # left for when their envelopes land
    assert len(tickets(engine)) == 10


@pytest.mark.parametrize("form", ["msg", "pair", "mixed"])
def test_a_chunk_leaves_out_a_message_moved_away_and_keeps_spool_order(tmp_path, form):
    spool = Spool(tmp_path)
    names = []
    for i in range(4):
        raw = message(message_id=f"<c{i}@example.com>")
        old = form == "pair" or (form == "mixed" and i % 2 == 1)
        names.append(put_pair(spool.root, raw, SUPPORT) if old else spool.put(raw, SUPPORT))
    for p in _incoming(spool).glob(f"{names[1]}.*"):  # shunt administration took it meanwhile
        p.unlink()
    pool = PreparePool(1)
    try:
        # through a real parse process, as a batch's chunk goes
        taken = pool._pool().submit(prepare_chunk, prepare, spool.incoming, names, Settings())
        got = taken.result(timeout=60)
    finally:
        pool.close()

    assert [s.entry.name for s, _ in got] == [names[0], names[2], names[3]]
    assert {(s.entry.envelope.source, s.entry.envelope.rcpt_tos) for s, _ in got} == {
        (SUPPORT.source, SUPPORT.rcpt_tos)
    }
    assert all(isinstance(s.raw, bytes) and p is not None and p.parsed for s, p in got)
    assert got[1][1].parsed.message_id == "<c2@example.com>"


def test_after_a_parse_process_died_the_batch_is_read_again_in_the_worker(tmp_path):
    from tests.integration.test_parse_pool import KILL, dying_prepare

    engine, spool, worker, names = _spooled(tmp_path, 1, MIN_FOR_POOL)
    worker.pipeline.pool = PreparePool(1, fn=dying_prepare)
    killer = spool.put(message(message_id="<kill@example.com>", extra=KILL.decode()), SUPPORT)
    young = _incoming(spool) / f"{time.time_ns():020d}-1-young.eml"  # its envelope to come
    young.write_bytes(message(message_id="<young@example.com>"))

    r = worker.drain()

    assert (r.stored, r.retried, r.shunted) == (MIN_FOR_POOL, 0, 1)
    [shunted] = spool.shunted()
    assert shunted.name == killer and [f["reason"] for f in shunted.envelope.failures] == [DIED]
    assert spool.pending() == 1 and young.exists()  # left for when its envelope lands
    assert len(tickets(engine)) == MIN_FOR_POOL
