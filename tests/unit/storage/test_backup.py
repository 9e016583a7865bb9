"""SQLite backups taken while a writer keeps committing are consistent and restore whole."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading

import pytest
import sqlalchemy as sa

from storage import migrate
from storage.backup import BackupError, backup, restore, verify_sqlite
from storage.db import make_engine
from tests.unit.storage.rows import counts, fill

WRITES = 3000  # bounded: the writer stops after this many commits whatever happens


def _job(number: int) -> dict:
    body = f"prompt {number} " * 20
    return {
        "id": f"load{number:06d}",
        "owner": "key1",
        "status": "queued",
        "priority": "interactive",
        "model_requested": "yandexgpt",
        "provider": "yandexgpt",
        "model": "yandexgpt",
        "channel": "latest",
        "upstream_id": "yandexgpt/latest",
        "queue": "yandexgpt.latest",
        "request": {"prompt": body, "sha": hashlib.sha256(body.encode()).hexdigest()},
        "attempt_count": 0,
        "created_at": sa.func.current_timestamp(),
        "updated_at": sa.func.current_timestamp(),
    }


class Writer(threading.Thread):
    """Commits one job row at a time until told to stop (or WRITES rows)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine, self.stop, self.written = make_engine(url), threading.Event(), 0
        self.started_writing = threading.Event()

    def run(self) -> None:
        jobs = sa.Table("jobs", sa.MetaData(), autoload_with=self.engine)
        for number in range(WRITES):
            if self.stop.is_set():
                break
            with self.engine.begin() as conn:
                conn.execute(jobs.insert().values(_job(number)))
            self.written = number + 1
            if self.written == 50:
                self.started_writing.set()
        self.started_writing.set()
        self.engine.dispose()


@pytest.fixture()
def live_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        fill(conn)
    engine.dispose()
    return url


def test_a_backup_under_writes_is_one_consistent_whole_state(live_db, tmp_path):
    writer = Writer(live_db)
    writer.start()
    assert writer.started_writing.wait(30)
    result = backup(live_db, tmp_path / "b" / "during.db")
    written_at_backup = writer.written
    writer.stop.set()
    writer.join(30)
    assert 50 <= written_at_backup < WRITES, "the backup did not overlap the writes"
    assert result.revision == migrate.heads(live_db)[0]
    with sqlite3.connect(result.path) as conn:
        rows = conn.execute("SELECT id, request FROM jobs WHERE id LIKE 'load%' ORDER BY id")
        ids = [row[0] for row in rows]
        loaded = conn.execute("SELECT request FROM jobs WHERE id LIKE 'load%'").fetchall()
    # Commits are in order: the copy holds a prefix of them, with no gap, each row whole.
    assert ids == [f"load{n:06d}" for n in range(len(ids))]
    assert 50 <= len(ids) <= written_at_backup + 1

    for (raw,) in loaded:
        request = json.loads(raw)
        assert hashlib.sha256(request["prompt"].encode()).hexdigest() == request["sha"]


def test_restore_brings_back_every_table_and_the_revision(live_db, tmp_path):
    engine = make_engine(live_db)
    with engine.connect() as conn:
        before = counts(conn)
    saved = backup(live_db, tmp_path / "saved.db")
    with engine.begin() as conn:  # after the backup, the data goes wrong
        conn.execute(sa.text("DELETE FROM attempts"))
        conn.execute(sa.text("UPDATE jobs SET status = 'failed'"))
    # A connection left open by a process still sees the restored pages afterwards.
    with engine.connect() as kept_open:
        assert restore(live_db, saved.path) == migrate.heads(live_db)[0]
        assert counts(kept_open) == before
        status = kept_open.execute(sa.text("SELECT status FROM jobs WHERE id = 'job1'"))
        assert status.scalar_one() == "succeeded"
    engine.dispose()
    assert migrate.schema_differences(live_db) == []


def test_restore_into_a_new_file_and_verification(live_db, tmp_path):
    saved = backup(live_db, tmp_path / "saved.db")
    elsewhere = f"sqlite:///{tmp_path / 'new' / 'fresh.db'}"
    restore(elsewhere, saved.path)
    engine = make_engine(elsewhere)
    with engine.connect() as conn:
        assert all(counts(conn).values())
    engine.dispose()
    assert verify_sqlite(saved.path) == migrate.heads(live_db)[0]


def test_a_backup_never_overwrites_and_a_bad_file_is_not_restored(live_db, tmp_path):
    saved = backup(live_db, tmp_path / "saved.db")
    with pytest.raises(BackupError, match="exists"):
        backup(live_db, saved.path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not an llmgw SQLite database"):
        restore(live_db, junk)
    with pytest.raises(BackupError, match="no such backup file"):
        restore(live_db, tmp_path / "missing.db")
    engine = make_engine(live_db)
    with engine.connect() as conn:
        assert all(counts(conn).values())  # the live database is untouched
    engine.dispose()


def test_postgresql_without_pg_dump_says_what_to_do(monkeypatch, tmp_path):
    from storage.backup import BackupUnavailable

    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump anywhere
    with pytest.raises(BackupUnavailable, match="pg_dump is not on PATH"):
        backup("postgresql+psycopg://u:secret@127.0.0.1:1/db", tmp_path / "x.dump")
