"""`/metrics` reads queue depth from the real broker: a job the API queued is counted."""

from __future__ import annotations

import re

import pytest

from llmgw.app import create_app
from llmgw.container import Container

pytestmark = pytest.mark.integration

QUEUE = "gigachat.rc"


def other_database(url: str) -> str:
    """The same Redis, another DB number: the session's worker (if running) never sees it."""
    base, _, db = url.rpartition("/")
    return f"{base}/{(int(db or 0) + 1) % 16}"


def queue_depth(client, queue: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    match = re.search(rf'^llmgw_queue_depth{{queue="{re.escape(queue)}"}} (\S+)$', text, re.M)
    assert match, text
    return float(match.group(1))


def test_a_queued_job_shows_in_queue_depth(settings, redis_url, auth):
    runtime = Container(settings.model_copy(update={"redis_url": other_database(redis_url)}))
    lists = [QUEUE, *(f"{QUEUE}\x06\x16{step}" for step in (3, 6, 9))]
    runtime.redis.delete(*lists)
    client = create_app(container=runtime).test_client()
    assert queue_depth(client, QUEUE) == 0

    body = {
        "model": "GigaChat-Pro:rc",
        "messages": [{"role": "user", "content": "Привет"}],
        "priority": "batch",
    }
    response = client.post("/v1/jobs", json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["route"]["queue"] == QUEUE
    try:
        assert queue_depth(client, QUEUE) == 1  # on the priority list `gigachat.rc\x06\x169`
        assert "llmgw_redis_up 1.0" in client.get("/metrics").get_data(as_text=True)
    finally:
        client.delete(f"/v1/jobs/{response.get_json()['id']}", headers=auth)
        runtime.redis.delete(*lists)
