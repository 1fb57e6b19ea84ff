"""What `mailgate tickets search` and `mailgate stats` need beyond the core tables.

The indexes here are portable. The full-text indexes are not: SQLite gets FTS5 tables
kept in step by triggers, PostgreSQL GIN indexes over `to_tsvector` expressions (kept in
step by PostgreSQL itself). Both exist only in migration 0007_search, per dialect; the
names below are what `store/search.py` queries and what `tests/unit/test_migrations.py`
leaves out of its comparison.
"""

from __future__ import annotations

from sqlalchemy import Index

from mailgate.db.models import Ticket, TicketCc, TicketTag

# SQLite: FTS5 tables over the text of articles (subject, body) and of tickets (title);
# rowid = articles.id / tickets.id
ARTICLES_FTS = "articles_fts"
TICKETS_FTS = "tickets_fts"
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
