"""check-config catches what would fail at run time, and says each mistake once, in the
file that has it, in our words (issue 14)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailgate.app import Daemon
from mailgate.cli.main import main
from mailgate.config.errors import ConfigError
from tests.harness import load, write_config


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new, 1))


def _check(path: Path, capsys) -> tuple[int, list[str], list[str]]:
    code = main(["--config", str(path), "check-config"])
    lines = capsys.readouterr().out.splitlines()
    errors = [ln.removeprefix("error: ") for ln in lines if ln.startswith("error: ")]
    warnings = [ln.removeprefix("warning: ") for ln in lines if ln.startswith("warning: ")]
    return code, errors, warnings


@pytest.fixture
def conf(tmp_path) -> Path:
    return write_config(tmp_path)


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load(path)
    return e.value.problems


def test_the_test_config_passes_with_a_warning_for_the_queue_no_agent_serves(conf, capsys):
    code, errors, warnings = _check(conf, capsys)
    assert (code, errors) == (0, [])
    assert warnings == [
        f"{conf.parent / 'queues' / 'sales.toml'}: no agent serves queue 'sales': its tickets "
        "notify nobody (add it to an agent's queues in agents.toml)"
    ]


def test_a_template_name_with_a_typo(conf, capsys):
    support = conf.parent / "queues" / "support.toml"
    _edit(support, "[autoresponse]\n", '[autoresponse]\ntemplate = "new_tiket.txt"\n')
    code, errors, _ = _check(conf, capsys)
    templates = conf.parent.parent / "templates"
    assert code == 1
    assert errors == [
        f"{support}: autoresponse.template: no template 'new_tiket.txt' in "
        f"{templates / 'support'}, {templates} or the built-in ones "
        "(did you mean 'new_ticket.txt'?)"
    ]


@pytest.mark.parametrize(
    ("where", "text", "expect"),
    [
        ("new_ticket.txt", "Hello {{ requester_name\n", ":1: template syntax error: unexpected"),
        (
            "new_ticket.txt",
            "Hello\n{{ custmer }}\n",
            ": undefined variable 'custmer' (it gets: pgp_fingerprint, pgp_public_key, "
            "queue_address, queue_name, requester, requester_name, tag, ticket_id, "
            "ticket_ref, title)",
        ),
        ("new_ticket.txt", "{% if x %}never{% endif %}", ": undefined variable 'x'"),
        ("support/closed.txt", "{{ days|nosuchfilter }}", "template syntax error: No filter"),
        ("support/answer_footer.txt", "{{ agent_name.__class__ }}", "is unsafe"),
        ("notify_new_ticket.txt", "{{ ticket.nonsense }}", ":1: 'mailgate.outgoing.digest"),
        ("support/agent_show.txt", '{% include "_nope.txt" %}', "includes '_nope.txt'"),
    ],
)
def test_a_broken_template_is_one_error_naming_its_file(conf, capsys, where, text, expect):
    path = conf.parent.parent / "templates" / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    code, errors, _ = _check(conf, capsys)
    assert code == 1
    [error] = errors  # shared by three queues, said once
    assert error.startswith(str(path)) and expect in error, error


def test_one_mistake_in_a_queue_file_is_one_error_without_agent_errors(conf):
    support = conf.parent / "queues" / "support.toml"
    _edit(support, 'addresses = ["support@example.test"]', "addresses = 7")
    assert _problems(conf) == [f'{support}: addresses: must be a list, like ["a", "b"]']
    # a file that is not TOML at all: its name is unknown, so its stem counts
    support.write_text('name = "support"\naddresses = [\n')
    [problem] = _problems(conf)
    assert problem.startswith(f"{support}: not valid TOML")


def test_a_duplicate_address_is_blamed_on_the_file_edited_last(conf):
    queues = conf.parent / "queues"
    billing, sales = queues / "billing.toml", queues / "sales.toml"
    _edit(billing, '"billing@example.test"', '"billing@example.test", "sales@example.test"')
    os.utime(sales, (1_000_000, 1_000_000))  # sales.toml is old; billing.toml was just edited
    assert _problems(conf) == [
        f"{billing}: addresses[1]: sales@example.test is already claimed by queue 'sales' ({sales})"
    ]


def test_agents_are_named_by_name(conf):
    agents = conf.parent / "agents.toml"
    agents.write_text(
        '[[agents]]\nname = "alice"\naddress = "alice@example.test"\nqueues = ["support"]\n'
        '[[agents]]\nname = "bob"\naddress = "bob@example.test"\nqueues = ["suport"]\n'
        'tier = "L4"\n'
    )
    assert _problems(conf) == [f"{agents}: agents[bob].tier: must be 'L1', 'L2' or 'L3'"]
    _edit(agents, 'tier = "L4"\n', "")
    assert _problems(conf) == [f"{agents}: agents[bob].queues: no queue named 'suport'"]


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        (
            "[priority]\n",
            "[priority]\nintial = 3\n",
            "priority.intial: unknown key (did you mean 'initial'?)",
        ),
        (
            'subject_tag = "support"',
            'subjet_tag = "support"',
            "subjet_tag: unknown key (did you mean 'subject_tag'?)",
        ),
        ("[autoresponse]\n", "[autoresponse]\ncolour = 1\n", "autoresponse.colour: unknown key"),
        (
            "initial = 50",
            'initial = "50"',
            "priority.initial: must be a whole number (like 50, not in quotes)",
        ),
        ("initial = 50", "initial = 100", "priority.initial: must be at most 99"),
        (
            "enabled = true",
            'enabled = "yes"',
            "autoresponse.enabled: must be true or false (without quotes)",
        ),
        ("period_hours = 24", "period_hours = -1", "autoresponse.period_hours: must be at least 0"),
        (
            "[priority]\n",
            '[[rules]]\nname = "vip"\nsender = ["example.com"]\npriority = 0\n[priority]\n',
            "rules[vip].priority: must be at least 1",
        ),
        (
            "[priority]\n",
            '[[rules]]\nname = "vip"\nsender = ["example.com"]\nqueue = "biling"\n[priority]\n',
            "rules[vip].queue: no queue named 'biling'",
        ),
    ],
)
def test_one_precise_error_in_our_words(conf, old, new, expect):
    support = conf.parent / "queues" / "support.toml"
    _edit(support, old, new)
    assert _problems(conf) == [f"{support}: {expect}"]


def test_run_refuses_a_broken_template_before_it_starts(conf, capsys):
    support = conf.parent / "queues" / "support.toml"
    _edit(support, "[autoresponse]\n", '[autoresponse]\ntemplate = "new_tiket.txt"\n')
    with pytest.raises(SystemExit) as e:
        main(["--config", str(conf), "run"])
    assert e.value.code == os.EX_CONFIG
    assert "autoresponse.template: no template 'new_tiket.txt'" in capsys.readouterr().err


def test_a_reload_keeps_the_old_config_when_a_template_would_fail(conf, caplog):
    daemon = Daemon(load(conf))
    support = conf.parent / "queues" / "support.toml"
    _edit(support, "[autoresponse]\n", '[autoresponse]\ntemplate = "new_tiket.txt"\n')
    assert daemon.reload() is False
    assert "no template 'new_tiket.txt'" in caplog.text
    assert daemon.config.queue("support").autoresponse.template == "new_ticket.txt"
    _edit(support, "new_tiket.txt", "new_ticket.txt")
    assert daemon.reload() is True


def test_the_sample_context_of_the_acknowledgement_is_the_real_one(conf):
    from mailgate.outgoing.builders import ticket_vars
    from mailgate.outgoing.template_checks import samples
    from mailgate.pgp.outgoing import ack_context

    cfg = load(conf)
    q = cfg.queue("support")
    real = {**ticket_vars(q, 1, "t", "a@example.com", "A"), **ack_context(q)}
    assert all(set(c) == set(real) for c in samples(q, "h")[q.autoresponse.template])


def test_every_built_in_template_has_a_sample_context(conf):
    """A template the code renders but check-config does not know would pass unchecked:
    each file in default_templates/ (includes, named `_*.txt`, aside) has samples."""
    from mailgate.autoresponse.render import DEFAULTS
    from mailgate.outgoing.template_checks import samples

    q = load(conf).queues[0]
    names = {p.name for p in Path(DEFAULTS).glob("*.txt") if not p.name.startswith("_")}
    assert names - set(samples(q, "h")) == set()
