"""Provider pacing measured: 300 jobs through a real worker with many threads against a
YandexGPT emulator that allows 10 concurrent calls per credential, without and with a cap.

Each run gets its own emulator and its own Redis database (broker, semaphore, circuits), so
the session's worker and earlier tests do not mix in; the database is the session's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from redis import Redis
from sqlalchemy import func, select

from llmgw.app import create_app
from llmgw.container import Container
from llmgw.processes import stop_process
from llmgw.stack import EMULATOR_YANDEX_KEY
from providers.emulators import yandexgpt
from providers.emulators.server import start_in_thread
from storage.models import Attempt, Job
from tests.helpers import start_worker, wait_for_worker
from tests.integration.conftest import MASTER_KEY

pytestmark = pytest.mark.integration

JOBS = 300
THREADS = 40
UPSTREAM_LIMIT = 10
TIME_BOUND = 120.0
ENDED = ("succeeded", "failed", "incomplete", "cancelled")


@dataclass(frozen=True)
class Run:
    seconds: float
    rejected_429: int
    statuses: dict[str, int]
    attempts: int
    fallbacks: int


def redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def run_burst(settings, tmp_path, *, db: int, cap: int) -> Run:
    emulator = start_in_thread(
        yandexgpt.create_app(
            yandexgpt.YandexEmulatorConfig(
                api_keys={EMULATOR_YANDEX_KEY},
                max_concurrency=UPSTREAM_LIMIT,
                latency=0.2,
                latency_jitter=0.3,
            )
        )
    )
    url = redis_db(settings.redis_url, db)
    Redis.from_url(url).flushdb()
    paced = settings.model_copy(
        update={
            "redis_url": url,
            "yandexgpt_base_url": emulator.url,
            "yandexgpt_operations_url": emulator.url,
            "yandexgpt_iam_url": emulator.url,
            "yandexgpt_max_in_flight": cap,
            "worker_concurrency": THREADS,
        }
    )
    container = Container(paced)
    proc = start_worker(paced, tmp_path / f"worker-{db}.log", concurrency=THREADS)
    try:
        wait_for_worker(container.celery, proc, tmp_path / f"worker-{db}.log")
        return measure(container, emulator.url)
    finally:
        stop_process(proc)
        emulator.stop()


def measure(container: Container, emulator_url: str) -> Run:
    client = create_app(container=container).test_client()
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    t0 = time.monotonic()
    ids = []
    for i in range(JOBS):
        body = {
            "model": "yandexgpt-lite:latest",
            "messages": [{"role": "user", "content": f"#{i}"}],
        }
        response = client.post("/v1/jobs", json=body, headers=auth)
        assert response.status_code == 202, response.get_json()
        ids.append(response.get_json()["id"])
    with container.sessions() as session:
        while time.monotonic() - t0 < TIME_BOUND:
            session.expire_all()
            ended = session.scalar(
                select(func.count()).where(Job.id.in_(ids), Job.status.in_(ENDED))
            )
            if ended == JOBS:
                break
            time.sleep(0.2)
        seconds = time.monotonic() - t0
        rows = session.execute(
            select(Job.status, func.count()).where(Job.id.in_(ids)).group_by(Job.status)
        ).all()
        attempts = session.scalar(
            select(func.count()).where(Attempt.job_id.in_(ids), Attempt.outcome != "skipped")
        )
        fallbacks = session.scalar(
            select(func.count()).where(Job.id.in_(ids), Job.provider != "yandexgpt")
        )
    stats = requests.get(f"{emulator_url}/_emulator/stats", timeout=5).json()
    return Run(
        seconds=round(seconds, 2),
        rejected_429=stats["rejected_concurrency"],
        statuses={status: count for status, count in rows},
        attempts=attempts or 0,
        fallbacks=fallbacks or 0,
    )


def test_pacing_turns_upstream_429s_into_queue_waits(settings, tmp_path, capsys):
    before = run_burst(settings, tmp_path, db=11, cap=0)
    after = run_burst(settings, tmp_path, db=12, cap=UPSTREAM_LIMIT)
    with capsys.disabled():
        print(f"\npacing: before (no cap) {before}\npacing: after (cap {UPSTREAM_LIMIT}) {after}")

    assert before.rejected_429 > 0, before  # the burst does overrun the upstream limit
    assert after.rejected_429 == 0, after
    assert after.statuses == {"succeeded": JOBS}, after
    assert after.attempts == JOBS  # waiting for a slot wrote no attempt
    assert after.seconds < TIME_BOUND
    # Same or better: generous for a shared 2-core machine, where both runs are noisy.
    assert after.seconds <= before.seconds * 1.2, (before, after)
