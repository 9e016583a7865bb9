"""Database operations on the suite's kind of database (PostgreSQL in CI's second run,
SQLite otherwise): up and down with a row in every table, backup and restore (pg_dump), a
backup taken while the gateway runs jobs, and a restore refused while a worker runs.

The walks run on a scratch database of their own (a new database on the same PostgreSQL
server, or a new SQLite file), never on the session's shared one."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from llmgw.cli import main
from storage import migrate
from storage.backup import backup, restore
from storage.db import make_engine
from tests.unit.storage.rows import counts, fill
from tests.unit.storage.updown import walk_down_and_up_with_data

pytestmark = pytest.mark.integration


@pytest.fixture()
def scratch_url(tmp_path):
    base = os.environ.get("LLMGW_TEST_DATABASE_URL")
    if not base or make_url(base).get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"llmgw_scratch_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_up_and_down_with_a_row_in_every_table(scratch_url):
    walk_down_and_up_with_data(scratch_url)


def test_backup_and_restore_bring_back_every_table(scratch_url, tmp_path):
    migrate.upgrade(scratch_url)
    engine = make_engine(scratch_url)
    with engine.begin() as conn:
        fill(conn)
        before = counts(conn)
    saved = backup(scratch_url, tmp_path / "saved")
    assert saved.size > 0
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM batch_lines"))
        conn.execute(sa.text("DELETE FROM attempts"))
    engine.dispose()
    restore(scratch_url, saved.path)
    engine = make_engine(scratch_url)
    with engine.connect() as conn:
        assert counts(conn) == before
        status = conn.execute(sa.text("SELECT status FROM jobs WHERE id = 'job1'")).scalar_one()
    engine.dispose()
    assert status == "succeeded"
    assert migrate.schema_differences(scratch_url) == []
    assert migrate.current_revision(scratch_url) == migrate.heads()[0]


def submit(client, auth, n: int):
    body = {"model": "yandexgpt-lite", "messages": [{"role": "user", "content": f"job {n}"}]}
    return client.post("/v1/jobs", json=body, headers=auth)


def test_a_backup_while_the_gateway_runs_jobs_is_whole(
    worker, client, auth, database_url, scratch_url, tmp_path
):
    stop, submitted = threading.Event(), []

    def load() -> None:
        for n in range(200):  # bounded
            if stop.is_set():
                return
            response = submit(client, auth, n)
            assert response.status_code == 202, response.get_json()
            submitted.append(response.get_json()["id"])

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    while len(submitted) < 20 and loader.is_alive():
        threading.Event().wait(0.05)
    accepted_before = list(submitted)
    saved = backup(database_url, tmp_path / "during")
    stop.set()
    loader.join(60)
    assert len(accepted_before) >= 20 and not loader.is_alive()
    restore(scratch_url, saved.path)  # into a database of its own, of the same kind
    engine = make_engine(scratch_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, status, request FROM jobs")).all()
        attempts = conn.execute(sa.text("SELECT job_id FROM attempts")).scalars().all()
    engine.dispose()
    ids = {row[0] for row in rows}
    assert set(accepted_before) <= ids  # every job accepted before the backup is in it
    assert all(row[1] and row[2] for row in rows)
    assert set(attempts) <= ids  # no attempt without its job: one consistent snapshot
    assert migrate.schema_differences(scratch_url) == []


def test_restore_is_refused_while_a_worker_runs(worker, runtime, database_url, tmp_path):
    saved = backup(database_url, tmp_path / "shared")
    result = CliRunner().invoke(main, ["db", "restore", str(saved.path)], obj=runtime)
    assert result.exit_code == 1, result.output
    assert "worker(s) running" in result.stderr and "--force" in result.stderr
