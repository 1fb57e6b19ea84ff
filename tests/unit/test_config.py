"""Config validation: every problem names the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.cli.main import main
from mailgate.config.errors import ConfigError
from tests.harness import load, write_config

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "mailgate.toml"


def test_shipped_example_config_is_valid():
    cfg = load(REPO_CONFIG)
    assert {q.name for q in cfg.queues} == {"support", "billing", "sales"}
    assert cfg.queue_for_address("Support+t12.abc@Example.Test").name == "support"
    assert cfg.queue_for_address("nobody@example.test") is None


@pytest.mark.parametrize(
    ("file", "content", "expect"),
    [
        (
            "queues/support.toml",
            'name = "support"\naddresses = ["not-an-address"]\n',
            "queues/support.toml: addresses: 'not-an-address' is not an email",
        ),
        (
            "queues/support.toml",
            'name = "support"\naddresses = ["support@example.test"]\n'
            '[autoresponse]\nperiod_hours = "soon"\n',
            "queues/support.toml: autoresponse.period_hours: Input should be a valid number",
        ),
        (
            "queues/support.toml",
            'name = "support"\naddresses = ["support@example.test"]\ncolour = 1\n',
            "queues/support.toml: colour: unknown key",
        ),
        (
            "queues/support.toml",
            'addresses = ["support@example.test"]\n',
            "queues/support.toml: name: required key is missing",
        ),
        (
            "queues/sales.toml",
            'name = "sales"\naddresses = ["billing@example.test"]\n',
            "addresses[0]: billing@example.test is already claimed by queue 'billing'",
        ),
        (
            "queues/support.toml",
            'name = "support"\naddresses = [\n',
            "queues/support.toml: not valid TOML",
        ),
        (
            "mailgate.toml",
            "[listener]\nport = 99999\n",
            "mailgate.toml: listener.port: Input should be less than or equal to 65535",
        ),
        (
            "agents.toml",
            '[[agents]]\nname = "x"\naddress = "x@example.test"\nqueues = ["nope"]\n',
            "agents.toml: agents.0.queues.0: no queue named 'nope'",
        ),
    ],
)
def test_errors_name_file_key_and_reason(tmp_path, file, content, expect):
    path = write_config(tmp_path)
    (path.parent / file).write_text(content)
    with pytest.raises(ConfigError) as e:
        load(path)
    assert any(expect in p for p in e.value.problems), e.value.problems


@pytest.mark.parametrize(
    ("section", "expect"),
    [
        (
            '[imap]\nhost = "imap.example.com"\nport = "x"\n',
            "queues/support.toml: imap.port: Input should be a valid integer",
        ),
        ("[sla]\nbogus = 1\n", "queues/support.toml: sla.bogus: unknown key"),
    ],
)
def test_sections_owned_by_other_modules_are_validated_at_load(tmp_path, section, expect):
    path = write_config(tmp_path, queue_extra={"support": section})
    with pytest.raises(ConfigError) as e:
        load(path)
    assert any(expect in p for p in e.value.problems), e.value.problems


def test_check_config_command_exit_codes(tmp_path, capsys):
    path = write_config(tmp_path)
    assert main(["--config", str(path), "check-config"]) == 0
    (path.parent / "queues" / "billing.toml").write_text('name = "billing"\naddresses = []\n')
    assert main(["--config", str(path), "check-config"]) == 1
    out = capsys.readouterr().out
    assert "billing.toml: addresses: a queue needs at least one address" in out


def test_agents_address_prints_a_verifiable_command_address(tmp_path, capsys):
    from mailgate.agents.tokens import parse_reply_address, verify

    path = write_config(tmp_path)
    assert main(["--config", str(path), "agents", "address", "alice"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["support", "billing"]
    cfg = load(path)
    addr = parse_reply_address(lines[0].split(": ")[1])
    assert addr is not None and addr.ticket_id == 0
    assert verify(cfg.secret, "alice", 0, addr.mac) and not verify(cfg.secret, "bob", 0, addr.mac)
    assert main(["--config", str(path), "agents", "address", "nobody"]) == 1
