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
    assert {q.name for q in cfg.queues} == {"support", "billing", "sales", "cancellation"}
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
            "queues/support.toml: autoresponse.period_hours: must be a number (like 2.5, not in",
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
            "mailgate.toml: listener.port: must be at most 65535",
        ),
        (
            "agents.toml",
            '[[agents]]\nname = "x"\naddress = "x@example.test"\nqueues = ["nope"]\n',
            "agents.toml: agents[x].queues: no queue named 'nope'",
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
            "queues/support.toml: imap.port: must be a whole number (like 50, not in quotes)",
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


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _without_secret(path: Path, line: str = "") -> Path:
    text = path.read_text().replace('secret = { env = "MG_TEST_SECRET_UNSET_OK" }\n', line)
    path.write_text(text)
    return path


def test_loading_writes_nothing_and_reads_no_secret(tmp_path):
    from mailgate.config import hmac_secret

    path = _without_secret(write_config(tmp_path))
    before = _files(tmp_path)
    cfg = load(path)
    assert _files(tmp_path) == before, "config.load wrote a file"
    with pytest.raises(
        ConfigError, match="generated HMAC secret does not exist yet; `mailgate run`"
    ):
        _ = cfg.secret
    secret = hmac_secret.ensure(cfg)
    assert cfg.secret_file.read_bytes() == secret and len(secret) == 64
    assert cfg.secret_file.stat().st_mode & 0o777 == 0o600
    assert hmac_secret.ensure(load(path)) == secret  # made once, then kept
    assert sorted(f.name for f in cfg.data_dir.iterdir()) == ["secret"]  # no temp file left


def test_an_empty_generated_secret_is_refused_not_used_as_a_key(tmp_path):
    # a crash between creating the file and writing it (the old ensure) left it empty,
    # and every token was then an HMAC under the empty key: anyone could mint one
    from mailgate.config import hmac_secret

    cfg = load(_without_secret(write_config(tmp_path)))
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    cfg.secret_file.write_bytes(b"")
    with pytest.raises(ConfigError, match="generated HMAC secret is 0 characters, at least 16"):
        hmac_secret.ensure(cfg)


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ('secret = { env = "MG_SURELY_UNSET_VARIABLE" }\n', "mailgate.secret.env: $MG_SURELY_"),
        ('secret = { command = ["echo", "short"] }\n', "mailgate.secret: must be at least 16"),
        ('secret = { file = "nope" }\n', "mailgate.secret.file: cannot read"),
    ],
)
def test_a_broken_secret_is_an_error_at_use_not_at_load(tmp_path, line, expect):
    path = _without_secret(write_config(tmp_path), line)
    cfg = load(path)
    with pytest.raises(ConfigError) as e:
        _ = cfg.secret
    assert e.value.problems[0].startswith(f"{path}: {expect}"), e.value.problems
    assert main(["--config", str(path), "check-config"]) == 1


def test_secret_from_a_command(tmp_path):
    path = _without_secret(
        write_config(tmp_path), 'secret = { command = ["echo", "0123456789abcdef-cmd"] }\n'
    )
    assert load(path).secret == b"0123456789abcdef-cmd"


def test_sections_are_typed_once_at_load(tmp_path):
    from mailgate.config.imap import ImapSettings
    from mailgate.config.sla import SlaSettings

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "pw").write_text("pw\n")
    imap = '[imap]\nhost = "127.0.0.1"\nuser = "s"\npassword_file = "../pw"\n'
    path = write_config(tmp_path, queue_extra={"support": imap + "[sla]\n"})
    support = load(path).queue("support")
    assert isinstance(support.imap, ImapSettings) and isinstance(support.sla, SlaSettings)
    assert support.imap.base == path.parent / "queues" and support.imap.password() == "pw"
    assert load(path).queue("billing").imap is None


def test_a_broken_section_is_its_only_problem(tmp_path):
    # alice serves support: its broken [sla] must not also read as "no queue named support"
    path = write_config(tmp_path, queue_extra={"support": '[sla]\ntimezone = "Mars/Olympus"\n'})
    with pytest.raises(ConfigError) as e:
        load(path)
    assert len(e.value.problems) == 1 and "sla.timezone: unknown time zone" in e.value.problems[0]


def test_the_pipes_key_lists_match_the_schema():
    from mailgate.config import layout, schema

    assert tuple(schema.MailgateFile.model_fields) == layout.MAILGATE_TABLES
    assert tuple(schema.MainSettings.model_fields) == layout.MAILGATE_KEYS
    assert tuple(schema.ListenerSettings.model_fields) == layout.LISTENER_KEYS
    assert tuple(schema.QueueFile.model_fields) == layout.QUEUE_KEYS
    assert schema.MainSettings().data_dir == layout.DEFAULT_DATA_DIR
    assert schema.MainSettings().queues_dir == layout.DEFAULT_QUEUES_DIR
    assert schema.ListenerSettings().max_message_bytes == layout.DEFAULT_MAX_MESSAGE_BYTES


@pytest.mark.parametrize("spool_dir", ["", 'spool_dir = "../elsewhere"'])
def test_the_pipe_and_the_daemon_agree_on_the_spool(tmp_path, spool_dir):
    from mailgate.pollers.pipe import read_pipe_config

    path = write_config(tmp_path, main_extra=spool_dir)
    cfg, pipe = load(path), read_pipe_config(path)
    assert pipe.spool_dir == cfg.spool_dir
    assert pipe.max_message_bytes == cfg.listener.max_message_bytes == 2_000_000
    assert pipe.queues == {q.name for q in cfg.queues}


@pytest.mark.parametrize(
    ("file", "content", "expect"),
    [
        (
            "mailgate.toml",
            "[mailgate]\nspool-dir = 'x'\n",
            "mailgate.toml: mailgate.spool-dir: unknown",
        ),
        ("mailgate.toml", "[listner]\nport = 1\n", "mailgate.toml: listner: unknown key"),
        (
            "mailgate.toml",
            "mailgate = 3\n",
            "mailgate.toml: mailgate: must be a table",
        ),
        (
            "mailgate.toml",
            "[listener]\nmax_message_bytes = 'lots'\n",
            "max_message_bytes: must be a whole number",
        ),
        (
            "mailgate.toml",
            "[mailgate]\ndata_dir = 1\n",
            "mailgate.data_dir: must be text in quotes",
        ),
        ("mailgate.toml", "[listener]\nmax_message_bytes = 0\n", "must be more than 0"),
        ("mailgate.toml", "[mailgate\n", "mailgate.toml: not valid TOML"),
        ("queues/sales.toml", "nme = 'sales'\n", "queues/sales.toml: nme: unknown key"),
        (
            "queues/sales.toml",
            "addresses = []\n",
            "queues/sales.toml: name: required key is missing",
        ),
        ("queues/sales.toml", "name = 7\n", "queues/sales.toml: name: must be text in quotes"),
    ],
)
def test_the_pipe_checks_what_it_reads_by_hand(tmp_path, file, content, expect):
    from mailgate.pollers.pipe import read_pipe_config

    path = write_config(tmp_path)
    (path.parent / file).write_text(content)
    with pytest.raises(ConfigError) as e:
        read_pipe_config(path)
    assert any(expect in p for p in e.value.problems), e.value.problems
    with pytest.raises(ConfigError):  # the daemon refuses the same file
        load(path)


def test_the_default_database_is_mailgate_db_in_the_data_dir():
    # the module rename once turned this file name into "mailgate.db.engine": an existing
    # install would have started on a new, empty database
    cfg = load(REPO_CONFIG)
    assert cfg.database_url == f"sqlite:///{cfg.data_dir / 'mailgate.db'}"
