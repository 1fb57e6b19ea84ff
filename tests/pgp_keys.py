"""The committed test-only PGP keys (tests/data/keys) and short GnuPG homes filled from them."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailgate.pgp.keyring import Keyrings

KEYS = Path(__file__).resolve().parent / "data" / "keys"
FPR = {
    line.split()[0]: line.split()[2]
    for line in (KEYS / "FINGERPRINTS.txt").read_text().splitlines()
    if line.strip()
}


def fresh_home() -> Path:
    """An empty GnuPG home with a short path (the agent's socket lives in it)."""
    home = Path(tempfile.mkdtemp(prefix="mg-", dir="/tmp"))
    home.chmod(0o700)
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    return home


def drop_home(home: Path) -> None:
    """Stop the home's gpg-agent (else one stays per test) and delete it."""
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def homes() -> Iterator[Callable[..., Path]]:
    """Make short GnuPG homes filled from tests/data/keys; agents killed afterwards."""
    made: list[Path] = []

    def make(*key_files: str) -> Path:
        home = fresh_home()
        made.append(home)
        for name in key_files:
            subprocess.run(
                ["gpg", "--homedir", str(home), "--batch", "--import", str(KEYS / name)],
                capture_output=True,
                check=True,
            )
        return home

    yield make
    for home in made:
        drop_home(home)


@pytest.fixture
def keyrings() -> Iterator[Keyrings]:
    """The keyring cache the daemon owns, for tests that drive the stages themselves."""
    with Keyrings() as rings:
        yield rings
