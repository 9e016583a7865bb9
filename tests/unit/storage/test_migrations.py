"""The schema comes from the Alembic revisions, and they agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from storage import migrate
from storage.db import make_engine
from storage.models import Base

HEAD = "0009"


def test_single_head():
    assert migrate.heads() == [HEAD]


def test_models_and_revisions_agree(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_every_revision_downgrades_one_step_at_a_time(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    revisions = [r.revision for r in script.walk_revisions()]  # head first
    migrate.upgrade(url)
    for revision, below in zip(revisions, [*revisions[1:], None], strict=True):
        assert migrate.current_revision(url) == revision
        migrate.downgrade(url, "-1")
        assert migrate.current_revision(url) == below
    assert set(inspect(make_engine(url)).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(url)
    assert migrate.current_revision(url) == HEAD
