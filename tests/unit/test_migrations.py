"""The migrations build exactly the schema the models describe (SQLite; PostgreSQL below)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mailgate.db import engine as db  # noqa: F401
from mailgate.db.models_search import FULL_TEXT_NAMES
from mailgate.db.tables import metadata


def _drift(url: str) -> list:
    engine = db.connect(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    return [d for d in diff if not _duplicates_primary_key(d) and not _full_text(d)]


def _full_text(d: tuple) -> bool:
    """The full-text search objects of migration 0007_search: dialect-specific, so not in
    the models (SQLite's FTS5 tables and the shadow tables FTS5 makes for each,
    PostgreSQL's GIN expression indexes); tests/integration/test_search.py searches them."""
    if d[0] not in ("remove_table", "remove_index"):
        return False
    name = d[1].name or ""
    return any(name == n or name.startswith(n + "_") for n in FULL_TEXT_NAMES)


def _duplicates_primary_key(d: tuple) -> bool:
    """A UNIQUE over exactly the primary key: redundant, and not reflected by PostgreSQL."""
    if d[0] not in ("add_constraint", "remove_constraint"):
        return False
    c = d[1]
    table = metadata.tables.get(c.table.name)
    if table is None:
        return False
    pk = {col.name for col in table.primary_key.columns}
    return getattr(c, "columns", None) is not None and {col.name for col in c.columns} == pk


def test_sqlite_schema_matches_the_models(tmp_path):
    assert _drift(f"sqlite:///{tmp_path / 'db.sqlite'}") == []


def test_postgres_schema_matches_the_models(pg_url):
    assert _drift(pg_url) == []


def test_upgrade_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db.connect(url).dispose()
    db.connect(url).dispose()  # every start runs it: the second run changes nothing
    assert _drift(url) == []
