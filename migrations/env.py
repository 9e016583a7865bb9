"""Alembic environment: the URL and (optionally) a live connection come from `storage.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from storage.db import make_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys(connection, on=False)
    try:
        _migrate(connection)
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """SQLite changes a table by copying it (batch mode): create the new one, copy the rows,
    drop the old one. With foreign keys enforced, dropping a table that others reference fails
    as soon as it has rows, so they are off while revisions run (SQLite's own procedure for
    schema changes, https://sqlite.org/lang_altertable.html#otheralter) and checked after.
    The pragma is a no-op inside a transaction: it goes straight to the driver, before
    SQLAlchemy begins one."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        if on:
            broken = cursor.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")
    finally:
        cursor.close()


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
