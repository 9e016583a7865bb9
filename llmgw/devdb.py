"""Throw-away databases and child environments, shared by the tests and the benchmarks.

A database built from the Alembic revisions (never `create_all`) and seeded with the built-in
catalogue, and the environment a child process (worker, API) needs to see the same settings.
"""

from __future__ import annotations

import os

from sqlalchemy import text

from llmgw.settings import Settings
from routing.catalogue import seed_catalogue
from storage import migrate
from storage.db import make_engine, make_session_factory


def reset_database(url: str) -> None:
    """Empty the database (PostgreSQL: its public schema) and migrate it to head."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate.upgrade(url)


def seed(url: str) -> None:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        seed_catalogue(session)
        session.commit()
    engine.dispose()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a child process needs to see the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMGW_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"LLMGW_{name.upper()}"] = str(value)
    return env
