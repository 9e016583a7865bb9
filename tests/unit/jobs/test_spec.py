"""The stored spec round-trips the typed plan: a worker reads back routes, not dicts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobs.spec import JobRequest, JobSpec


def test_the_plan_survives_the_json_column(unit_runtime):
    plan = unit_runtime.resolver.plan("yandexgpt:rc")
    request = JobRequest(
        model="yandexgpt:rc", messages=[{"role": "user", "content": "Hi"}], metadata={"a": "b"}
    )
    stored = JobSpec.build(request, plan, stream=True).dump()
    spec = JobSpec.load(stored)
    assert spec.plan.routes() == [c.route for c in plan.candidates]
    assert spec.plan.candidates[0].reason == plan.candidates[0].reason
    assert spec.stream is True and spec.metadata == {"a": "b"}
    assert spec.warnings == plan.route.warnings()
    assert "priority" not in stored


def test_a_row_of_an_older_version_still_loads():
    spec = JobSpec.load({"model": "GigaChat", "messages": [], "priority": "batch", "x": 1})
    assert spec.plan.routes() == [] and spec.stream is False


def test_the_request_is_strict():
    with pytest.raises(ValidationError):
        JobRequest.model_validate({"model": "m", "messages": [], "stream": True})
