"""The API SIGKILLed with keyed submissions and long-polls in flight: a client that retries
with the same Idempotency-Key gets exactly one job per key — never two, and never a 409 for
a job that was never written beyond the grace period."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import pytest
import requests
from sqlalchemy import func, select

from llmgw.processes import free_port, stop_process
from storage.models import Job
from tests.chaos.conftest import start_api

KEYS = 24
BODY = {"model": "GigaChat", "messages": [{"role": "user", "content": "Привет"}]}


def submit(url: str, key: str) -> requests.Response | None:
    headers = {"Authorization": "Bearer chaos-master-key", "Idempotency-Key": key}
    try:
        return requests.post(f"{url}/v1/jobs", json=BODY, headers=headers, timeout=10)
    except requests.RequestException:  # the API died under the request
        return None


def long_poll(url: str, job_id: str) -> None:
    headers = {"Authorization": "Bearer chaos-master-key"}
    with contextlib.suppress(requests.RequestException):  # the API may die under it
        requests.get(f"{url}/v1/jobs/{job_id}?wait=20", headers=headers, timeout=30)


@pytest.mark.stack_settings(idempotency_grace_seconds=3)
def test_api_sigkill_keyed_retries_make_exactly_one_job_per_key(stack):
    stack.start_worker()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = start_api(stack, port)
    first: dict[str, requests.Response | None] = {}
    threads = [
        threading.Thread(target=lambda k=k: first.__setitem__(k, submit(url, k)))
        for k in (f"order-{n}" for n in range(KEYS))
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    polls = [
        threading.Thread(target=long_poll, args=(url, r.json()["id"]))
        for r in list(first.values())
        if r is not None and r.status_code == 202
    ]
    for poll in polls:
        poll.start()
    os.killpg(api.pid, signal.SIGKILL)
    api.wait()
    for thread in threads + polls:
        thread.join(timeout=35)
    api = start_api(stack, port)
    try:
        jobs = {key: retry_until_accepted(url, key) for key in first}
    finally:
        stop_process(api)
    assert len(set(jobs.values())) == KEYS  # one job per key
    with stack.container.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == KEYS  # no ghost, no twin
    counts = stack.wait_all_terminal(timeout=90)
    assert counts == {"succeeded": KEYS}, counts
    assert stack.unlogged_calls() == {}
    accepted_first = sum(1 for r in first.values() if r is not None and r.status_code == 202)
    print(
        f"api kill: {KEYS} keyed submissions ({accepted_first} answered before the kill), "
        f"{KEYS} jobs after retries, {dict(counts)}, {dict(stack.logged_calls())} logged"
    )


def retry_until_accepted(url: str, key: str, timeout: float = 60) -> str:
    """A client's retries: 409 `idempotency_key_in_use` only within the grace period."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = submit(url, key)
        if response is not None and response.status_code == 202:
            return response.json()["id"]
        assert response is None or response.json()["error"]["code"] == "idempotency_key_in_use"
        time.sleep(0.5)
    raise AssertionError(f"{key}: still refused after {timeout} s")


def sync_request(url: str) -> None:
    headers = {"Authorization": "Bearer chaos-master-key"}
    with contextlib.suppress(requests.RequestException):  # the API dies under it
        requests.post(f"{url}/v1/chat/completions", json=BODY, headers=headers, timeout=30)


@pytest.mark.stack_settings(job_lease_seconds=6, sweeper_interval_seconds=2, sync_inline=True)
def test_api_sigkill_mid_inline_call_the_worker_ends_every_job_and_the_calls_are_logged(stack):
    """Sync requests' jobs run in the API process (`workers/inline.py`); killed mid-call,
    their jobs stay `running` with a lease nobody renews: the sweeper puts them back, a
    worker ends them, and the dead API's calls are in the attempt log as `lost`."""
    stack.start_beat()
    stack.start_worker()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = start_api(stack, port)
    clients = [threading.Thread(target=sync_request, args=(url,)) for _ in range(8)]
    for thread in clients:
        thread.start()
    stack.wait_for_calls_in_flight()  # the API's threads are calling the provider (2 s each)
    os.killpg(api.pid, signal.SIGKILL)
    api.wait()
    for thread in clients:
        thread.join(timeout=35)
    counts = stack.wait_all_terminal(timeout=120)
    jobs = sum(counts.values())  # a request killed before its insert made no job
    assert 1 <= jobs <= len(clients) and counts == {"succeeded": jobs}, counts
    logged = stack.logged_calls()
    received = stack.provider_calls()
    assert logged["started"] == 0 and logged["succeeded"] == jobs
    assert logged["lost"] >= 1, logged  # the calls the API was making when it died
    assert received <= sum(logged.values()) <= received + logged["lost"], (received, logged)
    assert stack.unlogged_calls() == {}
    print(f"api kill mid inline call: {dict(counts)}, {received} calls received, {dict(logged)}")
