"""`mailgate run` and other `mailgate` commands as real child processes, for tests.

A crash test must kill the real thing: a separate process with its own SQLite connection,
spool lock and listening socket, killed with SIGKILL at a moment it did not choose.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.harness import wait_until

REPO = Path(__file__).resolve().parents[2]
SECRET_ENV = "MG_TEST_SECRET_UNSET_OK"
READY_LINE = "mailgate running"


def child_env() -> dict[str, str]:
    """The test's environment plus the secret the test configs read (see harness.load)."""
    env = dict(os.environ)
    env.setdefault(SECRET_ENV, "test-secret-0123456789abcdef")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def mailgate(
    config: Path | str,
    *args: str,
    stdin: bytes | None = None,
    timeout: float = 60,
    columns: int | None = 200,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m mailgate --config CONFIG ARGS...` to completion; capture its output.

    `columns` sets $COLUMNS (rich tables are 80 wide when stdout is not a terminal);
    None leaves it unset.
    """
    env = child_env()
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
        check=False,
    )


class DaemonProc:
    """One `mailgate run` child; each start() is a new process logging to its own file."""

    def __init__(self, config: Path | str, log_dir: Path):
        self.config = Path(config)
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path: Path | None = None

    def spawn(self) -> DaemonProc:
        """Start the process without waiting for it to be ready."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.log_path = self.log_dir / f"daemon-{self.starts:02d}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mailgate", "--config", str(self.config), "run"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=child_env(),
            )
        return self

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def logs(self) -> str:
        """Every run's log, oldest first, each under a header line."""
        out = []
        for p in sorted(self.log_dir.glob("daemon-*.log")):
            out.append(f"===== {p.name}\n{p.read_text(errors='replace')}")
        return "\n".join(out)

    def is_ready(self) -> bool:
        return READY_LINE in self.log()

    def wait_ready(self, timeout: float = 30) -> None:
        proc = self.proc
        assert proc is not None
        try:
            wait_until(lambda: proc.poll() is not None or self.is_ready(), timeout, interval=0.02)
        except TimeoutError:
            log = self.log()[-4000:]
            raise TimeoutError(f"mailgate run not ready in {timeout}s:\n{log}") from None
        if not self.is_ready():
            raise RuntimeError(
                f"mailgate run exited with {proc.returncode} before it was ready:\n"
                + self.log()[-4000:]
            )

    def start(self, timeout: float = 30) -> DaemonProc:
        self.spawn()
        self.wait_ready(timeout)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """Simulated crash: SIGKILL, then reap the process."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 20) -> int | None:
        """SIGTERM and wait; the exit code, or None if it did not exit in time (then killed)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def cleanup(self) -> None:
        """Never leave a child behind, whatever the test did."""
        if self.alive:
            self.kill9()

    def __enter__(self) -> DaemonProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
