"""A database that stays locked past the busy timeout is a 503 to retry, and nothing is written."""

from __future__ import annotations

import sqlite3

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import sessionmaker

from llmgw.app import create_app
from storage.models import Job

GOOD = {"model": "GigaChat", "messages": [{"role": "user", "content": "Привет"}]}


def test_a_locked_database_answers_503_with_retry_after(unit_runtime, master_auth):
    url = unit_runtime.settings.database_url
    impatient = create_engine(url, connect_args={"timeout": 0.1, "check_same_thread": False})
    unit_runtime.__dict__["sessions"] = sessionmaker(impatient, expire_on_commit=False)
    client = create_app(container=unit_runtime).test_client()
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's lock
    try:
        response = client.post("/v1/jobs", json=GOOD, headers=master_auth)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    error = response.get_json()["error"]
    assert (error["code"], error["type"]) == ("unavailable", "service_unavailable_error")
    with unit_runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
