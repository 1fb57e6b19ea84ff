"""Rotating the HMAC secret of reply tokens: `mailgate.previous_secrets` are accepted while
agents still answer old notifications; every new token is made with `mailgate.secret`."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.agents import auth, tokens
from mailgate.config.errors import ConfigError
from tests.harness import load, write_config

OLD = "old-secret-0123456789abcdef"
NEW = "new-secret-0123456789abcdef"


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, previous: str):
    monkeypatch.setenv("MG_ROT_NEW", NEW)
    monkeypatch.setenv("MG_ROT_OLD", previous)
    path = write_config(tmp_path)
    text = path.read_text().replace(
        'secret = { env = "MG_TEST_SECRET_UNSET_OK" }',
        'secret = { env = "MG_ROT_NEW" }\nprevious_secrets = [{ env = "MG_ROT_OLD" }]',
    )
    path.write_text(text)
    return load(path)


def test_old_tokens_verify_new_ones_are_made_with_the_new_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tmp_path, monkeypatch, OLD)
    assert cfg.secret == NEW.encode() and cfg.accepted_secrets == (NEW.encode(), OLD.encode())
    agent = "alice"
    for key, accepted in ((OLD, True), (NEW, True), ("other-secret-0123456789abc", False)):
        addr = tokens.reply_address(key.encode(), agent, 7, "support@example.test")
        reply = auth.find_agent_reply(cfg, "alice@example.test", [addr])
        assert (reply is not None) == accepted, key
        if reply is not None:
            assert reply.ticket_id == 7
    minted = tokens.reply_address(cfg.secret, agent, 7, "support@example.test")
    assert minted == tokens.reply_address(NEW.encode(), agent, 7, "support@example.test")


def test_a_short_previous_secret_is_a_config_error_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tmp_path, monkeypatch, "short")
    with pytest.raises(ConfigError) as e:
        _ = cfg.accepted_secrets
    assert "mailgate.previous_secrets.0: must be at least 16 characters" in str(e.value)
