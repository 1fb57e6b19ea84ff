"""The thread step's lookups take the subject tag and references worked out ahead only of
the parsed form they were worked out of: a message the pgp step replaced is looked up by
its own subject and references (SQLite and PostgreSQL, inside a batch and outside); the
read-ahead's IN lists over more values than one list binds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailgate.parse.message import parse
from mailgate.pipeline.prepare import prepare
from mailgate.store import fast
from mailgate.store.articles import add_thread_ref
from mailgate.store.batch import batch_state
from mailgate.store.lookups import _refs, read_thread_ahead, thread_lookups
from tests.harness import message, with_three_tickets

T = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lookups.db'}"
    return request.getfixturevalue("pg_url")


def _raws() -> tuple[bytes, bytes]:
    """A follow-up by tag of ticket 2, and the same mail as a pgp step might give it back:
    another subject tag (ticket 3)."""
    sent = message(sender="ann@c.example", subject="Re: [support #2] Printer", message_id="<f@c>")
    return sent, sent.replace(b"[support #2]", b"[support #3]")


@pytest.mark.parametrize("in_batch", [False, True])
def test_ahead_is_used_for_its_own_parsed_form_only(url: str, in_batch: bool):
    engine = with_three_tickets(url, T)
    sent, replaced = _raws()
    ahead = prepare(sent)
    assert ahead.parsed is not None and ahead.tag == 2
    other = parse(replaced)
    with engine.begin() as conn:
        if in_batch:
            with batch_state(conn) as batch:
                read_thread_ahead(conn, batch, [ahead], T)
                own, replaced_form = (thread_lookups(conn, p, ahead) for p in (ahead.parsed, other))
        else:
            own = thread_lookups(conn, ahead.parsed, ahead)
            replaced_form = thread_lookups(conn, other, ahead)
        assert own == thread_lookups(conn, ahead.parsed)  # as the worker works it out
    assert own.tagged is not None and own.tagged.id == 2
    assert replaced_form.tagged is not None and replaced_form.tagged.id == 3


def test_an_in_list_read_over_several_lists_finds_each_known_id_once(url: str):
    # 1,030 Message-IDs: lists of 512, 512 and 6 (bound as 8, the last one repeated)
    engine = with_three_tickets(url, T)
    mids = [f"<m{i}@example.com>" for i in range(1030)]
    known = {m: 1 + i % 3 for i, m in enumerate(mids) if i % 97 == 0 or i >= 1027}
    with engine.begin() as conn:
        for m, tid in known.items():
            add_thread_ref(conn, m, tid)
        found = fast.rows_in(conn, _refs, mids)
    assert sorted(found) == sorted(known.items())
