"""The schema comes from the Alembic revisions, and they agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage import migrate
from storage.db import make_engine
from storage.models import Base


def test_single_head():
    assert migrate.heads() == ["0002"]


def test_models_and_revisions_agree(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_every_revision_downgrades(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    migrate.upgrade(url)
    assert migrate.current_revision(url) == "0002"
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    tables = set(inspect(make_engine(url)).get_table_names())
    assert tables <= {"alembic_version"}
    migrate.upgrade(url)
    assert "jobs" in inspect(make_engine(url)).get_table_names()
