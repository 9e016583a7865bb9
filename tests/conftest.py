"""Shared fixtures for unit tests: SQLite built from the Alembic revisions, fakeredis."""

from __future__ import annotations

import shutil
from pathlib import Path

import fakeredis
import pytest

from llmgw.app import create_app
from llmgw.container import Container
from llmgw.settings import Settings
from tests.helpers import reset_database, seed

UNIT_MASTER_KEY = "unit-master-key"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    """One SQLite file built from the Alembic revisions and seeded, once per session."""
    path = tmp_path_factory.mktemp("template") / "unit.db"
    url = f"sqlite:///{path}"
    reset_database(url)
    seed(url)
    return path


@pytest.fixture()
def unit_settings(tmp_path, migrated_template) -> Settings:
    """A fresh copy of the migrated, seeded database for each test (a copy, not a rebuild)."""
    shutil.copyfile(migrated_template, tmp_path / "unit.db")
    url = f"sqlite:///{tmp_path / 'unit.db'}"
    return Settings(
        database_url=url,
        redis_url="redis://unit-tests.invalid:6379/0",
        master_key=UNIT_MASTER_KEY,
        _env_file=None,
    )


@pytest.fixture()
def unit_runtime(unit_settings):
    runtime = Container(unit_settings)
    runtime.__dict__["redis"] = fakeredis.FakeRedis()
    yield runtime
    # Its job-end listener thread must not outlive the test: on a Redis a test took down it
    # retries with redis-py's jittered backoff, which draws from the global `random` (and
    # made Hypothesis's tests fail as "random used inside a strategy").
    listener = runtime.__dict__.get("done_listener")
    if listener is not None:
        listener.close()


@pytest.fixture()
def unit_client(unit_runtime):
    return create_app(container=unit_runtime).test_client()


@pytest.fixture()
def master_auth():
    return {"Authorization": f"Bearer {UNIT_MASTER_KEY}"}
