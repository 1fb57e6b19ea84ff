"""contrib/systemd/mailgate.service and LICENSE: the unit as shipped is valid and its
commands work; the license file matches pyproject's license field."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests import harness
from tests.servers import require

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "contrib" / "systemd" / "mailgate.service"


def _unit_with(tmp_path: Path, config: Path) -> Path:
    text = UNIT.read_text()
    text = text.replace(
        "/opt/mailgate/.venv/bin/mailgate", str(Path(sys.prefix) / "bin" / "mailgate")
    )
    text = text.replace("/etc/mailgate/mailgate.toml", str(config))
    out = tmp_path / "mailgate.service"
    out.write_text(text)
    return out


def test_the_systemd_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    require("systemd-analyze")
    unit = _unit_with(tmp_path, harness.write_config(tmp_path))
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert (run.returncode, run.stderr) == (0, "")
    for key in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "User=mailgate",
        "CapabilityBoundingSet=",
    ):
        assert f"\n{key}\n" in UNIT.read_text()


def test_the_units_commands_run(tmp_path: Path) -> None:
    unit = _unit_with(tmp_path, harness.write_config(tmp_path))
    lines = dict(
        line.split("=", 1) for line in unit.read_text().splitlines() if line.startswith("Exec")
    )
    check = subprocess.run(lines["ExecStartPre"].split(), capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    run_help = subprocess.run([*lines["ExecStart"].split(), "--help"], capture_output=True)
    assert run_help.returncode == 0


def test_license_file_matches_pyproject() -> None:
    license_field = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    assert license_field == {"text": "Apache-2.0"}
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
