"""What `mailgate tickets search` and `mailgate stats` need beyond the core tables.

The indexes here are portable. The full-text indexes are not: SQLite gets FTS5 tables
kept in step by triggers, PostgreSQL GIN indexes over `to_tsvector` expressions (kept in
step by PostgreSQL itself). Both exist only in migration 0007_search, per dialect; the
names below are what `store/search.py` queries and what `tests/unit/test_migrations.py`
leaves out of its comparison.

On SQLite an FTS5 insert costs per statement about what it costs per word, so the
worker's optimistic batch does not index each row it inserts: it inserts its articles
and tickets with `search_pending` true, which the triggers skip (migration
0008_search_by_batch), and its flush indexes them with one INSERT ... SELECT per table
and clears the flag before the batch commits (store/batch.py). A committed row is never
pending, so a search sees every committed row; the partial indexes below find the
pending ones. Every other insert, and all of PostgreSQL (the flag stays false), is
indexed by its statement as before.
"""

from __future__ import annotations

from sqlalchemy import Index

from mailgate.db.models import Article, Ticket, TicketCc, TicketTag

# SQLite: FTS5 tables over the text of articles (subject, body) and of tickets (title);
# rowid = articles.id / tickets.id
ARTICLES_FTS = "articles_fts"
TICKETS_FTS = "tickets_fts"
# each content table's FTS5 table and the columns it indexes (as migration 0007_search made them)
FULL_TEXT_COLUMNS = {
    "articles": (ARTICLES_FTS, ("subject", "body_text")),
    "tickets": (TICKETS_FTS, ("title",)),
}
# PostgreSQL: GIN expression indexes; the search repeats the expressions exactly
PG_ARTICLES_FTS_INDEX = "ix_fts_articles"
PG_TICKETS_FTS_INDEX = "ix_fts_tickets"
PG_TEXT_CONFIG = "simple"  # no stemming, like SQLite's unicode61: mail comes in any language
PG_BODY_CHARS = 100_000  # a tsvector holds at most 1 MB: index the first 100,000 characters
PG_ARTICLES_DOCUMENT = (
    f"to_tsvector('{PG_TEXT_CONFIG}', coalesce(subject, '') || ' ' || "
    f"substr(coalesce(body_text, ''), 1, {PG_BODY_CHARS}))"
)
PG_TICKETS_DOCUMENT = f"to_tsvector('{PG_TEXT_CONFIG}', coalesce(title, ''))"

FULL_TEXT_NAMES = (ARTICLES_FTS, TICKETS_FTS, PG_ARTICLES_FTS_INDEX, PG_TICKETS_FTS_INDEX)

# date ranges, the tag, category and CC filters, and the monthly counts of `stats`
ix_tickets_created_at = Index("ix_tickets_created_at", Ticket.created_at)
ix_tickets_closed_at = Index("ix_tickets_closed_at", Ticket.closed_at)
ix_tickets_category = Index("ix_tickets_category", Ticket.category)
ix_ticket_tags_tag = Index("ix_ticket_tags_tag", TicketTag.tag)
ix_ticket_ccs_address = Index("ix_ticket_ccs_address", TicketCc.address)  # quick search
# the rows an optimistic batch inserted and indexes at its flush (none once it committed)
ix_articles_search_pending = Index(
    "ix_articles_search_pending",
    Article.id,
    sqlite_where=Article.search_pending,
    postgresql_where=Article.search_pending,
)
ix_tickets_search_pending = Index(
    "ix_tickets_search_pending",
    Ticket.id,
    sqlite_where=Ticket.search_pending,
    postgresql_where=Ticket.search_pending,
)
