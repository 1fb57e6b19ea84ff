"""A daemon starting on a database already at every migration head does not load alembic
(7 MiB of its memory, docs/performance.md "The parse pool and memory"); one that is
behind is still migrated by alembic."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory

from mailgate.db import engine as db


def test_the_heads_read_from_the_files_are_alembics():
    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert db._heads() == set(script.get_heads())


def _connect_in_a_fresh_process(url: str) -> str:
    code = (
        "import sys; from mailgate.db import engine as db; db.connect(sys.argv[1]); "
        "print('alembic' in sys.modules)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, url], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_alembic_runs_only_when_the_database_is_behind(tmp_path):
    url = f"sqlite:///{tmp_path / 'mailgate.db'}"
    assert _connect_in_a_fresh_process(url) == "True"  # a new database: migrated
    assert _connect_in_a_fresh_process(url) == "False"  # at every head: nothing to load
    engine = db.make_engine(url)
    with engine.begin() as conn:  # as if a new migration had come with an upgrade
        conn.exec_driver_sql("DELETE FROM alembic_version WHERE version_num = '0007_leases'")
        conn.exec_driver_sql("DROP TABLE leases")
    assert _connect_in_a_fresh_process(url) == "True"
    with engine.connect() as conn:
        assert "0007_leases" in set(conn.exec_driver_sql("SELECT * FROM alembic_version").scalars())
        assert conn.exec_driver_sql("SELECT count(*) FROM leases").scalar() == 0
