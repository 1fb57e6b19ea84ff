"""Every table module imported, so `metadata` is the whole schema.

`db/models.py` holds the core tables (tickets, articles, blobs, outbox ...). A feature
with tables of its own puts them in a module `db/models_<topic>.py` built on
`models.Base` and adds it here; Alembic's environment and the migration test read
`metadata` from this module, so a table left out is caught by the test.
"""

from __future__ import annotations

from mailgate.db import (  # noqa: F401 - imported for their tables
    models,
    models_addresses,
    models_junk,
    models_leases,
    models_rules,
    models_satisfaction,
    models_search,
)

metadata = models.Base.metadata
