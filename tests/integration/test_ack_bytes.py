"""The acknowledgements of a drain, byte for byte, as the code before issue 16's second pass
on the acknowledgement's CPU made them.

The test corpus (tests/data/corpus: non-ASCII subjects and names, encoded words, long and
odd headers) is drained on a fixed clock, three seconds a message, with a governor whose
small caps hold some acknowledgements (the queue's minute, an address's hour). Every
outbox row (kind, Message-ID, recipients, status, the held row's reason, the SHA-256 of its
bytes) and every send_log line must be what `tests/data/ack_outbox.json` recorded: made by
running this module (`python -m tests.integration.test_ack_bytes`) on main at ba9641d,
before the templates were kept per queue, the queue's ack window read in two parts and
non-ASCII names encoded without formataddr. A change that means to change what an
acknowledgement says records the file again and says why.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.spool import Envelope, Spool
from tests.harness import load, write_config

DATA = Path(__file__).resolve().parent.parent / "data"
RECORDED = DATA / "ack_outbox.json"
GOVERNOR = "[governor]\nack_per_queue_minute = 6\nauto_per_address_hour = 2\n"


def drained_outbox(
    root: Path, agents_toml: str | None = None, queue_extra: dict[str, str] | None = None
) -> dict[str, list[list[object]]]:
    """The outbox rows and send_log lines after draining the corpus into `root`."""
    from mailgate.db import engine as db

    config = write_config(
        root,
        main_extra=GOVERNOR,
        batch_size=16,
        agents_toml=agents_toml,
        queue_extra=queue_extra,
    )
    cfg = load(config)
    ticks = iter(
        datetime(2026, 3, 2, 9, 0, tzinfo=UTC) + timedelta(seconds=3 * i) for i in range(10**6)
    )
    engine = db.connect(cfg.database_url)
    spool = Spool(cfg.spool_dir)
    worker = Worker(cfg, engine, spool, Pipeline(cfg, lambda: next(ticks), keyrings=Keyrings()))
    corpus = sorted(p for p in (DATA / "corpus").rglob("*") if p.suffix in (".eml", ".msg"))
    for p in corpus:
        spool.put(p.read_bytes(), Envelope(source="pipe", queue="support"))
    worker.drain()
    with engine.connect() as conn:
        outbox = conn.execute(
            text(
                "SELECT kind, message_id, rcpt_tos, status, last_error, raw FROM outbox ORDER BY id"
            )
        )
        rows = [[*r[:5], hashlib.sha256(r[5]).hexdigest()] for r in outbox]
        lines = conn.execute(
            text(
                "SELECT o.message_id, s.address, s.ticket_id, s.queue, s.kind, s.created_at"
                " FROM send_log s JOIN outbox o ON o.id = s.outbox_id ORDER BY s.id"
            )
        )
        sends = [[str(v) for v in r] for r in lines]
    engine.dispose()
    return {"outbox": rows, "send_log": sends}


def same_as_recorded(
    drained: dict[str, list[list[object]]], recorded_file: Path, in_order: bool = True
) -> dict:
    """`drained` (as the file holds it) against the recorded rows, row by row (the
    failure names the Message-ID) and the send_log lines; `drained` as read back.
    `in_order=False`: the same rows and lines, compared in Message-ID order (the order
    the outbox's ids give them may differ)."""
    recorded = json.loads(recorded_file.read_text())
    got = json.loads(json.dumps(drained))
    if not in_order:
        for d in (recorded, got):
            d["outbox"].sort(key=lambda r: r[1])
            d["send_log"].sort()
    assert len(got["outbox"]) == len(recorded["outbox"])
    for row, was in zip(got["outbox"], recorded["outbox"], strict=True):
        assert row == was, row[1]
    assert got["send_log"] == recorded["send_log"]
    return got


def test_every_acknowledgement_is_what_it_was(tmp_path):
    got = same_as_recorded(drained_outbox(tmp_path), RECORDED)
    statuses = {r[3] for r in got["outbox"]}
    assert {"pending", "held"} <= statuses  # the caps held some, others went


if __name__ == "__main__":  # record the file (on the code whose bytes are the reference)
    out = drained_outbox(Path(tempfile.mkdtemp(prefix="mg-ack-bytes-")))
    RECORDED.write_text(json.dumps(out, indent=0) + "\n")
    print(
        f"{len(out['outbox'])} outbox rows, {len(out['send_log'])} send_log lines", file=sys.stderr
    )
