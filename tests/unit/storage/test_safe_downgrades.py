"""Downgrades that would drop data refuse unless forced; forced ones lose only what they
declare (migrations/guard.py), on SQLite (tests/integration/test_migrations_with_data.py
runs the same walk on the suite's database, PostgreSQL in CI)."""

from __future__ import annotations

import pytest

from migrations.guard import DataLossRefused, forced
from storage import migrate
from tests.unit.storage.updown import walk_down_and_up_with_data


def test_down_and_up_with_a_row_in_every_table(tmp_path):
    walk_down_and_up_with_data(f"sqlite:///{tmp_path / 'updown.db'}")


def test_an_empty_database_downgrades_without_force(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate.upgrade(url)
    assert migrate.data_loss(url, "base") == []
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None


def test_the_refusal_names_what_it_would_drop(tmp_path):
    import sqlalchemy as sa

    from storage.db import make_engine

    url = f"sqlite:///{tmp_path / 'one.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO gateway_limits VALUES ('yandexgpt', '{}', '2026-12-01')"))
    engine.dispose()
    assert migrate.data_loss(url, "0006") == []  # 0007 drops nothing that holds data here
    with pytest.raises(DataLossRefused) as refused:
        migrate.downgrade(url, "0004")
    assert refused.value.losses == ["0005: table gateway_limits (1 rows)"]
    assert "--force" in str(refused.value)
    assert migrate.current_revision(url) == migrate.heads(url)[0]


@pytest.mark.parametrize(
    ("attributes", "x_arguments", "expected"),
    [
        ({}, {}, False),
        ({"force_data_loss": True}, {}, True),
        ({}, {"force": "1"}, True),
        ({}, {"force": "yes"}, True),
        ({}, {"force": "0"}, False),
        ({"force_data_loss": False}, {"force": "no"}, False),
    ],
)
def test_force_comes_from_the_config_attribute_or_alembic_x(attributes, x_arguments, expected):
    assert forced(attributes, x_arguments) is expected


def test_every_revision_declares_its_drops_and_guards_its_downgrade():
    """A new revision (from any branch) must say what its downgrade drops and call the guard
    first (migrations/guard.py says how)."""
    import inspect

    from alembic.script import ScriptDirectory

    from migrations.guard import Drops

    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    for revision in script.walk_revisions():
        module = revision.module
        assert isinstance(getattr(module, "DROPS", None), Drops), f"{revision.revision}: no DROPS"
        body = inspect.getsource(module.downgrade).split("\n")[1].strip()
        assert body == "refuse_data_loss(revision, DROPS)", f"{revision.revision}: {body}"
