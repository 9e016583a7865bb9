"""Fixtures of the routing tests: a non-admin key, and jobs with attempts written as rows."""

from __future__ import annotations

import uuid

import pytest

from api.auth import hash_key
from storage.models import ApiKey, Attempt, Job, utcnow

USER_KEY = "unit-user-key"


@pytest.fixture()
def user_auth(unit_runtime):
    with unit_runtime.sessions() as session:
        session.add(ApiKey(id="user1", name="user", key_hash=hash_key(USER_KEY)))
        session.commit()
    return {"Authorization": f"Bearer {USER_KEY}"}


def add_job(
    runtime, owner="user1", status="succeeded", model="yandexgpt", channel="rc", attempts=None
):
    """A finished yandexgpt job routed to `channel`; `attempts`: [(channel, outcome), ...]."""
    outcome = "succeeded" if status == "succeeded" else "failed"
    now = utcnow()
    job = Job(
        id=uuid.uuid4().hex,
        owner=owner,
        status=status,
        model_requested=f"{model}:{channel}",
        provider="yandexgpt",
        model=model,
        channel=channel,
        upstream_id=f"{model}/{channel}",
        queue=f"yandexgpt.{channel}",
        request={"messages": []},
    )
    for number, (used, result) in enumerate(attempts or [(channel, outcome)], start=1):
        job.attempts.append(
            Attempt(
                number=number,
                provider="yandexgpt",
                model=model,
                channel=used,
                upstream_id=f"{model}/{used}",
                outcome=result,
                latency_ms=120.0,
                model_version="22.05.2025",
                started_at=now,
                finished_at=now,
            )
        )
    with runtime.sessions() as session:
        session.add(job)
        session.commit()
    return job.id
