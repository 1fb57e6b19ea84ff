"""Every corpus message (real-world, malformed) ends as an article or in the shunt with a reason."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import func, select

from mailgate.db.models import Article
from mailgate.db.models_junk import JunkMail
from mailgate.spool import Envelope
from tests.harness import load, offline, write_config

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in (".eml", ".msg", ""))


def test_every_corpus_message_ends_as_article_or_shunt(tmp_path):
    files = [p for p in corpus_files() if p.name not in ("MANIFEST.tsv", "README.md")]
    assert len(files) > 150, "the corpus copy is missing"
    cfg = load(write_config(tmp_path))
    engine, spool, worker = offline(cfg)
    for p in files:
        spool.put(p.read_bytes(), Envelope(source="pipe", queue="support"))
    result = worker.drain()
    shunted = spool.shunted()
    with engine.connect() as conn:
        articles = conn.execute(select(func.count()).select_from(Article)).scalar_one()
        # mail no person wrote that belongs to no ticket: quarantined (issue 11)
        junk = conn.execute(select(JunkMail.raw_sha256)).scalars().all()
    print(
        f"\ncorpus: {len(files)} files -> {result.stored} stored, {result.duplicates} "
        f"duplicates, {len(shunted)} shunted, {articles} articles"
    )
    for e in shunted:
        print(
            f"  shunted {e.name}: {e.envelope.failures[-1]['stage']}: "
            f"{e.envelope.failures[-1]['reason'].splitlines()[0]}"
        )
    # duplicates: some corpus files are copies of one message (same Message-ID and sender)
    assert result.stored + result.duplicates + len(shunted) == len(files)
    assert articles + len(junk) == result.stored
    machine = [
        p for p in files if "bounces" in str(p) or p.name == "mailparser__mail_malformed_2.eml"
    ]
    # the bounces folder (and a bounce among the malformed files), but the one a person
    # wrote to another person (a ticket here: nothing threads it)
    expected = {hashlib.sha256(p.read_bytes()).hexdigest() for p in machine}
    assert set(junk) <= expected and len(junk) == len(expected) - 1
    assert spool.pending() == 0
    for e in shunted:
        failure = e.envelope.failures[-1]
        assert failure["stage"] and failure["reason"].strip()
    # a parser bug would show up as a retried-then-shunted "pipeline" failure, not a reject
    assert all(e.envelope.failures[-1]["stage"] in ("parse", "route") for e in shunted), [
        e.envelope.failures[-1]["reason"][:300] for e in shunted
    ]
