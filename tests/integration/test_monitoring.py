"""`/metrics` reads queue depth from the real broker: a job the API queued is counted."""

from __future__ import annotations

import re
import subprocess
import sys

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


def test_an_answered_job_adds_its_cost_on_the_worker_metrics(settings, redis_url, auth, tmp_path):
    """A real worker process (its own, on another Redis DB, with a metrics port) answers a job
    through the emulator; its `llmgw_cost_total` grows by the tokens at the catalogue price,
    and its queue-wait histogram counts the job once."""
    import requests

    from llmgw.processes import free_port, port_open, stop_process, wait_until
    from routing.snapshot import Pricing
    from tests.helpers import settings_env, wait_for_worker

    own = settings.model_copy(update={"redis_url": other_database(redis_url)})
    runtime = Container(own)
    port = free_port()
    cmd = [sys.executable, "-m", "llmgw.cli", "worker", "-c", "4", "--metrics-port", str(port)]
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd,
            env=settings_env(own),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_worker(runtime.celery, proc, log_path)
        wait_until(lambda: port_open(port), timeout=30, what="worker metrics port")
        client = create_app(container=runtime).test_client()
        body = {"model": "yandexgpt-lite:latest", "messages": [{"role": "user", "content": "Цена"}]}
        job_id = client.post("/v1/jobs", json=body, headers=auth).get_json()["id"]
        job = client.get(f"/v1/jobs/{job_id}?wait=30", headers=auth).get_json()
        assert job["status"] == "succeeded", job
        usage = job["result"]["usage"]
        price: Pricing = runtime.resolver.catalogue().find("yandexgpt-lite").pricing
        expected = price.cost(usage["prompt_tokens"], usage["completion_tokens"])
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        series = (
            'llmgw_cost_total{channel="latest",currency="RUB",model="yandexgpt-lite",'
            'provider="yandexgpt"}'
        )
        match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
        assert match, text[-2000:]
        assert expected > 0 and float(match.group(1)) == pytest.approx(expected)
        # The job waited in its queue (submitted over the API, claimed by this worker).
        waited = (
            'llmgw_job_queue_wait_seconds_count{channel="latest",model="yandexgpt-lite",'
            'priority="interactive",provider="yandexgpt"}'
        )
        match = re.search(rf"^{re.escape(waited)} (\S+)$", text, re.M)
        assert match and float(match.group(1)) == 1.0, text[-2000:]
    finally:
        stop_process(proc)
