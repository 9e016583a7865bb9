"""`llmgw db …`: upgrade backs up first, downgrade refuses to lose data, backup/restore,
restore refuses when workers cannot be ruled out, and check."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from llmgw.cli import main
from storage import migrate
from storage.db import make_engine
from tests.unit.storage.rows import counts, fill


@pytest.fixture()
def url(monkeypatch, tmp_path):
    for name in ("LLMGW_REDIS_URL", "LLMGW_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env, no var/ of a running stack
    url = f"sqlite:///{tmp_path / 'var' / 'llmgw.db'}"
    monkeypatch.setenv("LLMGW_DATABASE_URL", url)
    return url


def run(*args: str):
    return CliRunner().invoke(main, ["db", *args])


def _with_data(url: str, revision: str = "head") -> None:
    migrate.upgrade(url, revision)
    engine = make_engine(url)
    with engine.begin() as conn:
        fill(conn)
    engine.dispose()


def test_upgrade_of_an_empty_database_needs_no_backup(url):
    result = run("upgrade")
    assert result.exit_code == 0, result.output
    assert "backup" not in result.output
    assert result.output.endswith(f"database at {migrate.heads(url)[0]}\n")


def test_upgrade_backs_up_first_and_the_backup_is_the_old_revision(url, tmp_path):
    migrate.upgrade(url, "0006")
    result = run("upgrade", "--backup-path", "before.db")
    assert result.exit_code == 0, result.output
    assert "backup written: before.db" in result.output and "at revision 0006" in result.output
    from storage.backup import verify_sqlite

    assert verify_sqlite(tmp_path / "before.db") == "0006"
    assert migrate.current_revision(url) == migrate.heads(url)[0]


def test_upgrade_without_backup_writes_none(url, tmp_path):
    migrate.upgrade(url, "0006")
    result = run("upgrade", "--no-backup")
    assert result.exit_code == 0, result.output
    assert "backup" not in result.output
    assert not (tmp_path / "var" / "backups").exists()


def test_downgrade_with_data_refuses_says_what_and_force_does_it(url):
    _with_data(url)
    result = run("downgrade", "0004")
    assert result.exit_code == 1
    assert "refused: this downgrade would drop data" in result.stderr
    assert "0006: table batches (1 rows)" in result.stderr
    assert "0005: column api_keys.limits (1 rows with a value)" in result.stderr
    assert migrate.current_revision(url) == migrate.heads(url)[0]
    forced = run("downgrade", "0004", "--force")
    assert forced.exit_code == 0, forced.output
    assert migrate.current_revision(url) == "0004"


def test_backup_then_restore_with_force_when_no_redis_is_configured(url, tmp_path):
    _with_data(url)
    backed = run("backup")
    assert backed.exit_code == 0, backed.output
    (written,) = (tmp_path / "var" / "backups").glob("llmgw-*.db")
    engine = make_engine(url)
    with engine.begin() as conn:
        before = counts(conn)
        conn.execute(sa.text("DELETE FROM job_feedback"))
    refused = run("restore", str(written))
    assert refused.exit_code == 1
    assert "cannot ask whether workers run" in refused.stderr
    restored = run("restore", str(written), "--force")
    assert restored.exit_code == 0, restored.output
    with engine.connect() as conn:
        assert counts(conn) == before
    engine.dispose()


def test_restore_refuses_when_the_broker_cannot_be_asked(url, monkeypatch, tmp_path):
    _with_data(url)
    run("backup", "b.db")
    monkeypatch.setenv("LLMGW_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    result = run("restore", "b.db")
    assert result.exit_code == 1
    assert "cannot ask the workers" in result.stderr and "--force" in result.stderr


def test_a_failed_backup_is_one_line_and_exit_1(url):
    _with_data(url)
    Path("taken.db").write_text("")
    result = run("backup", "taken.db")
    assert result.exit_code == 1
    assert "backup failed: taken.db exists" in result.stderr


def test_check_reports_an_empty_catalogue_then_passes_once_seeded(url):
    migrate.upgrade(url)
    result = run("check")
    assert result.exit_code == 1
    assert "catalogue: empty" in result.stderr
    seeded = CliRunner().invoke(main, ["models", "seed"])
    assert seeded.exit_code == 0, seeded.output
    result = run("check")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: schema at")


def test_check_reports_a_schema_behind_head(url):
    migrate.upgrade(url, "0006")
    result = run("check")
    assert result.exit_code == 1
    assert "schema:" in result.stderr and "head is" in result.stderr
