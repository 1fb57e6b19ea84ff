"""SecretRef, the one shape of a secret: exactly one of file, env, command; read at use."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mailgate.config.imap import ImapSettings
from mailgate.config.pgp import PgpSettings
from mailgate.config.secrets import SecretError, SecretRef


@pytest.mark.parametrize(
    "table",
    [{}, {"file": "a", "env": "B"}, {"env": "B", "command": ["true"]}, {"command": []}],
)
def test_exactly_one_source(table: dict):
    with pytest.raises(ValidationError, match="give exactly one of file, env or command"):
        SecretRef.model_validate(table)


def test_each_source_is_read_at_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "pw").write_text("from-file\n")
    file_ref = SecretRef(file="pw")
    assert file_ref.read(tmp_path, "k.file") == "from-file"
    (tmp_path / "pw").write_text("rotated\n")  # never cached: a rotated file just works
    assert file_ref.read(tmp_path, "k.file") == "rotated"
    monkeypatch.setenv("MG_TEST_SECRET_REF", " from-env ")
    assert SecretRef(env="MG_TEST_SECRET_REF").read(tmp_path, "k.env") == " from-env "
    cmd = SecretRef.model_validate({"command": "sh -c 'pwd; echo >&2 noise'"})
    assert cmd.command == ["sh", "-c", "pwd; echo >&2 noise"]
    assert cmd.read(tmp_path, "k.command") == str(tmp_path)  # runs in the config's directory


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (SecretRef(file="missing"), "k: cannot read {base}/missing: No such file or directory"),
        (SecretRef(file="empty"), "k: {base}/empty is empty"),
        (SecretRef(env="MG_SURELY_UNSET_VARIABLE"), "k: $MG_SURELY_UNSET_VARIABLE is not set"),
        (SecretRef(command=["sh", "-c", "echo no >&2; exit 3"]), "k exited with status 3: no"),
        (SecretRef(command=["sh", "-c", "true"]), "k printed nothing"),
        (SecretRef(command=["/nonexistent/get-token"]), "k '/nonexistent/get-token' could not run"),
        (SecretRef(command=["sleep", "5"]), "k 'sleep' could not run: Command"),
    ],
)
def test_errors_name_the_key_and_the_reason(tmp_path: Path, ref: SecretRef, message: str):
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecretError) as e:
        ref.read(tmp_path, "k", timeout=0.5)
    assert message.format(base=tmp_path) in str(e.value)


def test_load_time_checks_do_not_read_or_run(tmp_path: Path):
    assert SecretRef(file="nope").problems(tmp_path, "k") == [f"k: {tmp_path}/nope does not exist"]
    assert SecretRef(env="MG_SURELY_UNSET_VARIABLE").problems(tmp_path, "k") == [
        "k: $MG_SURELY_UNSET_VARIABLE is not set"
    ]
    assert SecretRef(command=["/nonexistent/cmd"]).problems(tmp_path, "k") == []


def test_section_flat_keys_are_secret_refs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MG_TEST_IMAP_PW", "pw")
    imap = ImapSettings(host="h", user="u", password_env="MG_TEST_IMAP_PW")
    assert imap.password() == "pw" and not imap.uses_oauth2
    token = ImapSettings(host="h", user="u", oauth2_token_env="MG_TEST_IMAP_PW")
    assert token.uses_oauth2 and token.oauth2_token() == "pw"
    with pytest.raises(ValidationError, match="give only one of password_env and password_command"):
        ImapSettings(host="h", user="u", password_env="X", password_command=["x"])
    pgp = PgpSettings(gnupg_home="g", passphrase_command=["echo", "sesame"], base=tmp_path)
    assert pgp.passphrase() == "sesame"
    assert (
        PgpSettings(gnupg_home="g", passphrase_env="MG_SURELY_UNSET_VARIABLE").passphrase() is None
    )
    with pytest.raises(
        ValidationError, match="give only one of passphrase_file and passphrase_env"
    ):
        PgpSettings(gnupg_home="g", passphrase_file="f", passphrase_env="E")
