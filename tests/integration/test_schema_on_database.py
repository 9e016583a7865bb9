"""The revisions build the same schema as the models on the suite's database (PostgreSQL in
CI's second run, SQLite otherwise)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage import migrate
from storage.db import make_engine
from storage.models import Base

pytestmark = pytest.mark.integration


def test_models_and_revisions_agree_on_this_database(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
    assert migrate.current_revision(database_url) == migrate.heads()[0]
