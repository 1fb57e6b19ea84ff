"""The named pipeline steps: a bug lands in the shunt with the step that raised it."""

from __future__ import annotations

import pytest

from mailgate.pipeline import prepare, steps
from mailgate.spool import Envelope
from tests.harness import load, message, offline, tickets, write_config


def test_the_steps_run_in_the_documented_order():
    assert [name for name, _ in steps.STEPS] == [
        "parse",
        "route",
        "pgp",
        "agent",
        "classify",
        "bounce",
        "spam",
        "thread",
        "junk",
        "rules",
        "autoresponse",
        "decide",
        "store",
        "satisfaction",
        "ack",
        "notify",
    ]


SMTP = Envelope(source="smtp", rcpt_tos=("support@example.test",))


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("injected bug")


# (step, what inside it raises): a function the step calls, looked up when it runs
BUGS = [
    ("classify", prepare, "classify"),  # worked out ahead, then again in the step
    ("thread", steps, "choose"),
    ("rules", steps, "evaluate"),
    ("decide", steps, "decide"),
    ("store", steps.store, "apply"),
    ("ack", steps, "build_ack"),
]


@pytest.mark.parametrize(("step", "module", "name"), BUGS, ids=[b[0] for b in BUGS])
def test_a_bug_in_a_step_is_shunted_with_that_step_and_one_traceback(
    tmp_path, monkeypatch, step, module, name
):
    cfg = load(write_config(tmp_path))
    engine, spool, worker = offline(cfg)
    spool.put(message(), SMTP)
    monkeypatch.setattr(module, name, _boom)

    result = worker.drain()

    assert (result.retried, result.shunted, result.stored) == (2, 1, 0)
    [entry] = spool.shunted()
    env = entry.envelope
    assert env.attempts == cfg.worker.max_attempts == 3
    assert [f["stage"] for f in env.failures] == [step] * 3
    assert {f["reason"] for f in env.failures} == {"RuntimeError: injected bug"}
    [tb] = env.tracebacks
    assert tb["stage"] == step and tb["attempts"] == [1, 2, 3]
    assert "_boom" in tb["text"] and "injected bug" in tb["text"]
    assert "_NeedsIsolation" not in tb["text"]  # not the optimistic pass's failure again
    assert tickets(engine) == []  # each failed try was rolled back with its savepoint


def test_a_bug_in_one_message_leaves_the_others_of_its_batch_alone(tmp_path, monkeypatch):
    cfg = load(write_config(tmp_path))
    engine, spool, worker = offline(cfg)
    real_choose = steps.choose

    def choose_unless_poison(sender, *args, **kwargs):  # type: ignore[no-untyped-def]
        if sender == "poison@example.com":
            raise RuntimeError("injected bug")
        return real_choose(sender, *args, **kwargs)

    monkeypatch.setattr(steps, "choose", choose_unless_poison)
    for sender in ("a@example.com", "poison@example.com", "b@example.com"):
        spool.put(message(sender=sender), SMTP)

    result = worker.drain()

    assert (result.stored, result.shunted) == (2, 1)
    assert sorted(t.requester_addr for t in tickets(engine)) == ["a@example.com", "b@example.com"]
    [entry] = spool.shunted()
    assert [f["stage"] for f in entry.envelope.failures] == ["thread"] * 3
