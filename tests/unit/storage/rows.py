"""One row in every table of the head schema, written with SQLAlchemy Core (no ORM defaults):
what the migration and backup tests put in a database before they move or copy it.

`fill` refuses a schema with a table it has no row for, so a new table added by a revision
fails these tests until it gets a row here (a data-losing downgrade of it must be guarded)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

AT = datetime(2026, 12, 1, 12, 0, 0)

ROWS: dict[str, dict[str, Any]] = {
    "providers": {"id": "yandexgpt", "display_name": "YandexGPT"},
    "models": {
        "id": 1,
        "name": "yandexgpt",
        "provider_id": "yandexgpt",
        "family": "yandexgpt",
        "context_window": 32000,
        "pricing": {"currency": "RUB", "prompt_per_1k": 1.2, "completion_per_1k": 1.2},
    },
    "model_versions": {
        "id": 1,
        "model_id": 1,
        "channel": "latest",
        "upstream_id": "yandexgpt/latest",
        "status": "active",
        "priority": 10,
        "released_at": AT,
        "capabilities": ["chat", "stream"],
    },
    "api_keys": {
        "id": "key1",
        "name": "team",
        "key_hash": "a" * 64,
        "is_admin": False,
        "created_at": AT,
        "expires_at": AT,
        "allowed_models": ["yandexgpt"],
        "limits": [{"kind": "rpm", "value": 60}],
    },
    "jobs": {
        "id": "job1",
        "owner": "key1",
        "status": "succeeded",
        "priority": "batch",
        "model_requested": "yandexgpt",
        "provider": "yandexgpt",
        "model": "yandexgpt",
        "channel": "latest",
        "upstream_id": "yandexgpt/latest",
        "queue": "yandexgpt.latest",
        "request": {"messages": [{"role": "user", "content": "Привет"}]},
        "result": {"text": "Здравствуйте"},
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "attempt_count": 1,
        "error_retry_after": 30,
        "fallbacks": [{"from": "yandexgpt:rc", "to": "yandexgpt:latest", "reason": "5xx"}],
        "result_expired_at": AT,
        "created_at": AT,
        "updated_at": AT,
    },
    "attempts": {
        "id": 1,
        "job_id": "job1",
        "number": 1,
        "provider": "yandexgpt",
        "model": "yandexgpt",
        "channel": "latest",
        "upstream_id": "yandexgpt/latest",
        "outcome": "succeeded",
        "latency_ms": 120.5,
        "started_at": AT,
        "finished_at": AT,
    },
    "model_aliases": {"alias": "yandexgpt-pro", "model_id": 1},
    "model_policies": {"model_id": 1, "sunset_policy": "redirect", "equivalents": []},
    "model_releases": {
        "id": 1,
        "model_id": 1,
        "version": "09.02.2025",
        "upstream_id": "yandexgpt/latest",
        "channel": "latest",
    },
    "catalogue_events": {
        "id": 1,
        "at": AT,
        "actor": "ops",
        "action": "promote",
        "model": "yandexgpt",
        "before": {},
        "after": {},
    },
    "job_feedback": {"job_id": "job1", "owner": "key1", "score": 1, "created_at": AT},
    "key_routing_policies": {"key_id": "key1", "cross_provider": True, "updated_at": AT},
    "gateway_limits": {
        "model": "yandexgpt",
        "limit": {"kind": "rpm", "value": 5},
        "updated_at": AT,
    },
    "batches": {
        "id": "batch1",
        "owner": "key1",
        "status": "completed",
        "completion_window": "24h",
        "total": 1,
        "completed": 1,
        "failed": 0,
        "invalid_lines": [],
        "metadata": {},
        "created_at": AT,
        "expires_at": AT,
    },
    "batch_lines": {
        "batch_id": "batch1",
        "line": 1,
        "custom_id": "c1",
        "request": {"model": "yandexgpt"},
        "job_id": "job1",
    },
    "callback_deliveries": {
        "id": "cb1",
        "owner": "key1",
        "job_id": "job1",
        "url": "https://hooks.example.com/llmgw",
        "status": "delivered",
        "attempts": 1,
        "next_attempt_at": AT,
        "delivered_at": AT,
        "created_at": AT,
    },
    "callback_secrets": {"key_id": "key1", "version": 2, "rotated_at": AT},
}


def tables(conn: Connection) -> list[str]:
    return sorted(set(sa.inspect(conn).get_table_names()) - {"alembic_version"})


def fill(conn: Connection) -> None:
    """One row per table of the schema this connection sees, parents first."""
    metadata = sa.MetaData()
    metadata.reflect(conn)
    missing = set(tables(conn)) - set(ROWS)
    assert not missing, f"tests/unit/storage/rows.py has no row for {sorted(missing)}"
    for table in metadata.sorted_tables:
        if table.name in ROWS:
            conn.execute(table.insert().values(ROWS[table.name]))


def counts(conn: Connection) -> dict[str, int]:
    return {
        name: conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
        for name in tables(conn)
    }
