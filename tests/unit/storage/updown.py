"""Migrate up and down with a row in every table: what the SQLite unit test and the
PostgreSQL integration test both walk through on their own database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from migrations.guard import DataLossRefused
from storage import migrate
from storage.db import make_engine
from tests.unit.storage.rows import counts, fill


def walk_down_and_up_with_data(url: str) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            fill(conn)
        full = _counts(engine)
        assert all(full.values()), full
        _refused_at_once(url, engine, full)
        _down_one_forced_step_at_a_time(url, engine)
        assert migrate.current_revision(url) is None
        migrate.upgrade(url)
        assert migrate.schema_differences(url) == []
    finally:
        engine.dispose()


def _refused_at_once(url: str, engine: sa.Engine, full: dict[str, int]) -> None:
    """Down to base without force: refused before the first step, naming every table."""
    with pytest.raises(DataLossRefused) as refused:
        migrate.downgrade(url, "base")
    text = "\n".join(refused.value.losses)
    for table in full:
        assert f"table {table} (1 rows)" in text or f"column {table}." in text, table
    assert "column jobs.fallbacks (1 rows with a value)" in text
    assert migrate.current_revision(url) == migrate.heads(url)[0]
    assert _counts(engine) == full


def _down_one_forced_step_at_a_time(url: str, engine: sa.Engine) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    for revision in script.walk_revisions():  # head first
        module = revision.module
        before = _counts(engine)
        if module.DROPS.tables or module.DROPS.columns:
            with pytest.raises(DataLossRefused):
                migrate.downgrade(url, "-1")
            assert migrate.current_revision(url) == revision.revision
        migrate.downgrade(url, "-1", force=True)
        assert migrate.current_revision(url) == revision.down_revision
        after = _counts(engine)
        kept = {t: n for t, n in before.items() if t not in module.DROPS.tables}
        assert after == kept, f"{revision.revision} lost rows it does not declare"
        if revision.revision == "0004":  # its column goes back into the request, not away
            _priority_kept_in_request(engine)


def _priority_kept_in_request(engine: sa.Engine) -> None:
    jobs = sa.table("jobs", sa.column("id"), sa.column("request", sa.JSON))
    with engine.connect() as conn:
        request = conn.execute(sa.select(jobs.c.request)).scalar_one()
    assert request["priority"] == "batch"


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return counts(conn)
