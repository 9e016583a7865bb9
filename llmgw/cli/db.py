"""`llmgw db …`: the database schema (Alembic), backups, restores and the post-migration check.

`upgrade` backs the database up first (`storage.backup`) unless `--no-backup` or there is
nothing to keep (an empty database). `downgrade` refuses to drop data unless `--force`
(`migrations.guard`). `restore` refuses while a worker answers Celery's ping, unless
`--force`: a worker would keep writing to the database under the restore. Exit codes: 0 done,
1 refused or failed (the message says why), 2 configuration (as every data command).
"""

from __future__ import annotations

from pathlib import Path

import click

from llmgw.cli.context import DataGroup, container

PING_TIMEOUT = 2.0  # seconds to wait for workers to answer a ping


@click.group(cls=DataGroup)
def db() -> None:
    """Database schema (Alembic), backups and restores."""


def _url(ctx: click.Context) -> str:
    return container(ctx).settings.database_url


@db.command("upgrade")
@click.argument("revision", default="head")
@click.option("--no-backup", is_flag=True, help="Do not back the database up first.")
@click.option("--backup-path", type=click.Path(path_type=Path), help="Where to write that backup.")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str, no_backup: bool, backup_path: Path | None):
    """Migrate the database up to REVISION (default: head), after a backup."""
    from storage import migrate

    url = _url(ctx)
    before = migrate.current_revision(url)
    if before is not None and not no_backup and before not in migrate.heads(url):
        _backup_or_fail(url, backup_path, hint=" (or skip it: --no-backup)")
    migrate.upgrade(url, revision)
    click.echo(f"database at {migrate.current_revision(url)}")


@db.command("downgrade")
@click.argument("revision")
@click.option("--force", is_flag=True, help="Drop tables and columns that hold data.")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str, force: bool) -> None:
    """Migrate the database down to REVISION (e.g. -1 or base); refuses to lose data."""
    from migrations.guard import DataLossRefused
    from storage import migrate

    url = _url(ctx)
    try:
        migrate.downgrade(url, revision, force=force)
    except DataLossRefused as exc:
        click.echo("refused: this downgrade would drop data:", err=True)
        for line in exc.losses:
            click.echo(f"  {line}", err=True)
        click.echo("back up first (`llmgw db backup`), then repeat with --force", err=True)
        ctx.exit(1)
    click.echo(f"database at {migrate.current_revision(url) or 'base'}")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Print the database's current revision."""
    from storage import migrate

    click.echo(migrate.current_revision(_url(ctx)) or "empty")


@db.command("backup")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.pass_context
def db_backup(ctx: click.Context, path: Path | None) -> None:
    """Back the database up to PATH (default var/backups/llmgw-<UTC time>.db|.dump), safely
    while the gateway runs."""
    _backup_or_fail(_url(ctx), path)


def _backup_or_fail(url: str, path: Path | None, hint: str = "") -> None:
    from storage.backup import BackupError, backup

    try:
        result = backup(url, path)
    except BackupError as exc:
        raise click.ClickException(f"backup failed: {exc}{hint}") from None
    at = f" at revision {result.revision}" if result.revision else ""
    click.echo(f"backup written: {result.path} ({result.size} bytes{at})")


@db.command("restore")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Restore even if workers run (or cannot be asked).")
@click.pass_context
def db_restore(ctx: click.Context, path: Path, force: bool) -> None:
    """Replace the database's contents with the backup at PATH. Stop the workers first."""
    from storage.backup import BackupError, restore

    if not force:
        _refuse_while_workers_run(ctx)
    try:
        revision = restore(_url(ctx), path)
    except BackupError as exc:
        raise click.ClickException(f"restore failed: {exc}") from None
    at = f" (revision {revision})" if revision else ""
    click.echo(f"restored {path}{at}; run `llmgw db check` before starting the workers")


def _refuse_while_workers_run(ctx: click.Context) -> None:
    from llmgw.cli.context import redis_or_none

    resources = container(ctx)
    if redis_or_none(resources) is None:
        raise click.ClickException(
            "no Redis configured: cannot ask whether workers run; stop them and use --force"
        )
    try:
        replies = resources.celery.control.ping(timeout=PING_TIMEOUT)
    except Exception as exc:  # broker unreachable: we cannot know, so we do not guess
        raise click.ClickException(
            f"cannot ask the workers ({type(exc).__name__}: {exc}); stop them and use --force"
        ) from None
    if replies:
        names = ", ".join(sorted(name for reply in replies for name in reply))
        raise click.ClickException(
            f"refused: {len(replies)} worker(s) running ({names}); stop them first, or pass --force"
        )


@db.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """After a migration or restore: the schema matches the models and the catalogue is sound."""
    from routing.snapshot import load_catalogue
    from routing.validate import catalogue_problems
    from storage import migrate

    url = _url(ctx)
    problems = [f"schema: {diff}" for diff in migrate.schema_differences(url)]
    current, heads = migrate.current_revision(url), migrate.heads(url)
    if current not in heads:
        problems.append(f"schema: at revision {current}, head is {', '.join(heads)}")
    if not problems:
        with container(ctx).sessions() as session:
            problems += [f"catalogue: {p}" for p in catalogue_problems(load_catalogue(session))]
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        ctx.exit(1)
    click.echo(f"ok: schema at {current} matches the models; the catalogue is sound")
