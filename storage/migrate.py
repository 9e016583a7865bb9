"""Alembic driven from code: `llmgw db upgrade|downgrade|current|check` and the tests use this.

A downgrade that would drop data refuses before its first step (`migrations.guard`): the
`DROPS` of every revision on the way down are checked against the database first, so the
refusal names everything at once and leaves the schema untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import migrations
from migrations.guard import FORCE_ATTRIBUTE, DataLossRefused, Drops, losses

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str, *, force: bool = False) -> None:
    """Down to `revision`; raises `DataLossRefused` (nothing done) when a step would drop
    data, unless `force`."""
    config = alembic_config(database_url)
    if not force:
        found = data_loss(database_url, revision)
        if found:
            raise DataLossRefused(found)
    config.attributes[FORCE_ATTRIBUTE] = force
    command.downgrade(config, revision)


def data_loss(database_url: str, revision: str) -> list[str]:
    """What a downgrade from the current revision to `revision` would drop, one line each."""
    from storage.db import make_engine

    script = ScriptDirectory.from_config(alembic_config(database_url))
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            if current is None:
                return []
            target = _absolute(script, current, revision) or "base"
            found: list[str] = []
            for step in script.iterate_revisions(current, target):  # the target excluded
                drops = getattr(step.module, "DROPS", Drops())
                found += losses(conn, step.revision, drops)
            return found
    finally:
        engine.dispose()


def _absolute(script: ScriptDirectory, current: str, revision: str) -> str | None:
    """`-1`, `base`, or a revision id as Alembic reads them, to an id (None: base)."""
    if revision == "base":
        return None
    if revision.startswith("-") and revision[1:].isdigit():
        step: Any = script.get_revision(current)
        for _ in range(int(revision[1:])):
            if step is None:
                break
            step = script.get_revision(step.down_revision) if step.down_revision else None
        return step.revision if step is not None else None
    found = script.get_revision(revision)
    return found.revision if found is not None else None  # type: ignore[union-attr]


def current_revision(database_url: str) -> str | None:
    from storage.db import make_engine

    engine = make_engine(database_url)
    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
    engine.dispose()
    return revision


def schema_differences(database_url: str) -> list[Any]:
    """What autogenerate would change to make the database match the models ([] = none)."""
    from storage.db import make_engine
    from storage.models import Base

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


def heads(database_url: str = "sqlite://") -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
