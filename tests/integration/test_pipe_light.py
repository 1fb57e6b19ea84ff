"""`mailgate ingest` as the MTA runs it: light, and blind to the HMAC secret.

The MTA starts one process per message, possibly as another user than the daemon: it must
import only what spooling needs and never read (or create) the secret. The HMAC secret is
created by `mailgate run` and `mailgate process`, never by `check-config` or `ingest`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.harness import message, write_config
from tests.reliability.daemon_proc import REPO, DaemonProc, child_env, mailgate

HEAVY = ("pydantic", "sqlalchemy", "aiosmtpd", "jinja2", "gnupg", "rich", "argparse")


def _fresh_config(root: Path, secret_line: str = "") -> Path:
    """The test config with `mailgate.secret` replaced (default: none, so generated)."""
    path = write_config(root)
    text = path.read_text().replace('secret = { env = "MG_TEST_SECRET_UNSET_OK" }\n', secret_line)
    path.write_text(text)
    return path


def test_ingest_imports_nothing_heavy(tmp_path: Path):
    path = _fresh_config(tmp_path)
    code = (
        "import sys\n"
        "from mailgate.cli.main import main\n"
        f"rc = main(['-c', {str(path)!r}, 'ingest'])\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
        "sys.exit(rc)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        input=message(),
        capture_output=True,
        cwd=REPO,
        env=child_env(),
        check=False,
    )
    assert r.returncode == 0, r.stderr.decode()
    imported = set(r.stdout.decode().split())
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == [], heavy
    ours = sorted(m for m in imported if m.startswith("mailgate."))
    assert ours == [
        "mailgate.cli",
        "mailgate.cli.commands",
        "mailgate.cli.ingest",
        "mailgate.cli.main",
        "mailgate.config",
        "mailgate.config.errors",
        "mailgate.config.layout",
        "mailgate.durable",
        "mailgate.envelope",
        "mailgate.pollers",
        "mailgate.pollers.pipe",
        "mailgate.spool",
        "mailgate.spool_files",
    ], ours
    assert len(list((tmp_path / "var" / "spool" / "incoming").glob("*.msg"))) == 1


def test_ingest_works_with_an_unreadable_secret_and_never_makes_one(tmp_path: Path):
    unreadable = tmp_path / "config" / "secret-is-a-directory"
    path = _fresh_config(tmp_path, f'secret = {{ file = "{unreadable}" }}\n')
    unreadable.mkdir()  # reading it fails even for root
    r = mailgate(path, "ingest", stdin=message(subject="no secret needed"))
    assert r.returncode == 0, r.stderr.decode()
    incoming = list((tmp_path / "var" / "spool" / "incoming").glob("*.msg"))
    assert len(incoming) == 1
    # the commands that need the secret refuse it, naming file, key and reason
    r = mailgate(path, "agents", "address", "alice")
    assert r.returncode == 78
    assert f"{path}: mailgate.secret.file: cannot read {unreadable}" in r.stderr.decode()

    fresh = _fresh_config(tmp_path / "fresh")
    assert mailgate(fresh, "ingest", stdin=message()).returncode == 0
    assert not (tmp_path / "fresh" / "var" / "secret").exists()


def test_check_config_on_a_fresh_data_dir_only_says_the_secret_will_be_made(tmp_path: Path):
    path = _fresh_config(tmp_path)
    secret = tmp_path / "var" / "secret"
    r = mailgate(path, "check-config")
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert f"HMAC secret: {secret} (will be generated on first run)" in out
    assert not (tmp_path / "var").exists(), "check-config wrote into the data directory"

    r = mailgate(path, "process")
    assert r.returncode == 0, r.stderr.decode()
    made = secret.read_bytes()
    assert len(made) == 64 and secret.stat().st_mode & 0o777 == 0o600
    out = mailgate(path, "check-config").stdout.decode()
    assert f"HMAC secret: {secret} (generated, 64 characters)" in out
    assert secret.read_bytes() == made


def test_run_creates_the_secret(tmp_path: Path):
    path = _fresh_config(tmp_path)
    secret = tmp_path / "var" / "secret"
    (tmp_path / "logs").mkdir()
    daemon = DaemonProc(path, tmp_path / "logs")
    try:
        assert not secret.exists()
        daemon.start()
        assert len(secret.read_bytes()) == 64
    finally:
        daemon.cleanup()
