"""Backups of the database, taken while the gateway runs, and restores.

SQLite: SQLite's online backup API (`sqlite3.Connection.backup`) copies every page in one
step under a read transaction. With the WAL journal (storage.db) readers do not block writers,
so API and workers keep writing while it runs, and the copy is the database as of one commit:
consistent, never a torn file. Copying the file would not be: the last commits may still sit
in `-wal`. A restore writes the backup back through the same API, into the live file, so
connections that stay open see the restored pages, not a replaced inode.

PostgreSQL: `pg_dump --format=custom` (a consistent snapshot of a running database by
design) and `pg_restore --clean --if-exists --single-transaction`; both must be on PATH, at a
version not older than the server's. The password goes through `PGPASSWORD`, never the
command line (where `ps` shows it). Without the tools: `BackupUnavailable`, with what to do.

Every backup is checked after it is written (SQLite: `PRAGMA integrity_check` and an
`alembic_version` row; PostgreSQL: `pg_restore --list` reads it), and a restore checks the
file the same way before touching the database. Whether workers run (a restore under them
would be overwritten or crash them) is the caller's to check: `llmgw db restore`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

DEFAULT_DIR = Path("var") / "backups"


class BackupError(RuntimeError):
    """The backup or restore could not be done; the message says why and what to do."""


class BackupUnavailable(BackupError):
    """This database's backup tool is missing (PostgreSQL without pg_dump on PATH)."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    revision: str | None


def default_path(database_url: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    suffix = ".db" if _is_sqlite(make_url(database_url)) else ".dump"
    return DEFAULT_DIR / f"llmgw-{stamp}{suffix}"


def backup(database_url: str, path: Path | None = None) -> BackupResult:
    url = make_url(database_url)
    target = Path(path) if path is not None else default_path(database_url)
    if target.exists():
        raise BackupError(f"{target} exists; choose another path (a backup never overwrites)")
    target.parent.mkdir(parents=True, exist_ok=True)
    if _is_sqlite(url):
        revision = _sqlite_backup(_sqlite_file(url), target)
    else:
        _pg_dump(url, target)
        revision = None
    return BackupResult(target, target.stat().st_size, revision)


def restore(database_url: str, path: Path) -> str | None:
    """Replace the database's contents with the backup at `path`; the backup's revision
    (SQLite) is returned."""
    url = make_url(database_url)
    if not Path(path).is_file():
        raise BackupError(f"{path}: no such backup file")
    if _is_sqlite(url):
        return _sqlite_restore(Path(path), _sqlite_file(url))
    _pg_restore(url, Path(path))
    return None


# --- SQLite


def _sqlite_backup(source: Path, target: Path) -> str | None:
    if not source.is_file():
        raise BackupError(f"{source}: no such database file")
    with _connect(source) as src, _connect(target) as dst:
        src.backup(dst)  # pages=-1: every page in one step, one consistent snapshot
    return verify_sqlite(target)


def _sqlite_restore(backup_file: Path, live: Path) -> str | None:
    revision = verify_sqlite(backup_file)
    live.parent.mkdir(parents=True, exist_ok=True)
    with _connect(backup_file) as src, _connect(live) as dst:
        src.backup(dst)
    return revision


def verify_sqlite(path: Path) -> str | None:
    """The backup's Alembic revision; `BackupError` if the file is not a sound llmgw database."""
    try:
        with _connect(path) as conn:
            (status,) = conn.execute("PRAGMA integrity_check").fetchone()
            if status != "ok":
                raise BackupError(f"{path}: integrity check failed: {status}")
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not an llmgw SQLite database ({exc})") from None
    return row[0] if row else None


class _connect:
    """A sqlite3 connection closed on exit (sqlite3's own context manager only commits)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, timeout=30)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


# --- PostgreSQL


def _pg_dump(url: URL, target: Path) -> None:
    _run([_tool("pg_dump"), "--format=custom", f"--file={target}", _dbname(url)], url)
    _run([_tool("pg_restore"), "--list", str(target)], url)


def _pg_restore(url: URL, path: Path) -> None:
    tool = _tool("pg_restore")
    _run([tool, "--list", str(path)], url)
    options = ["--clean", "--if-exists", "--single-transaction", "--no-owner"]
    _run([tool, *options, _dbname(url), str(path)], url)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupUnavailable(
            f"{name} is not on PATH: install the PostgreSQL client tools (Debian: "
            "`apt-get install postgresql-client`, at the server's major version or newer), "
            "or back up with your platform's own PostgreSQL snapshots"
        )
    return found


def _run(argv: list[str], url: URL) -> None:
    """Run a PostgreSQL client tool, the password in its environment."""
    env = {**os.environ, **({"PGPASSWORD": str(url.password)} if url.password else {})}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        name = Path(argv[0]).name
        raise BackupError(f"{name} failed (exit {result.returncode}): {' '.join(tail)}")


def _dbname(url: URL) -> str:
    plain = url.set(drivername="postgresql", password=None)
    return f"--dbname={plain.render_as_string(hide_password=False)}"
