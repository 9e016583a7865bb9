"""`llmgw db …`: the database schema (Alembic)."""

from __future__ import annotations

import click

from llmgw.cli.context import DataGroup
from llmgw.settings import load_settings


@click.group(cls=DataGroup)
def db() -> None:
    """Database schema (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from storage import migrate

    url = load_settings().database_url
    migrate.upgrade(url, revision)
    click.echo(f"database at {migrate.current_revision(url)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (e.g. -1 or base)."""
    from storage import migrate

    migrate.downgrade(load_settings().database_url, revision)


@db.command("current")
def db_current() -> None:
    """Print the database's current revision."""
    from storage import migrate

    click.echo(migrate.current_revision(load_settings().database_url) or "empty")
