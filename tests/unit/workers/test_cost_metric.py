"""`llmgw_cost_total`: an answered call adds what its tokens cost at the model's list price."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import REGISTRY

from jobs import lifecycle
from jobs.spec import JobRequest, JobSpec
from providers.base import Usage
from routing.snapshot import Pricing
from tests.unit.workers.fakes import AnsweringProvider
from workers.attempt import observe_cost
from workers.service import execute_job

LABELS = {"provider": "yandexgpt", "model": "yandexgpt", "channel": "rc", "currency": "RUB"}


def cost(**labels: str) -> float:
    return REGISTRY.get_sample_value("llmgw_cost_total", {**LABELS, **labels}) or 0.0


def test_an_answered_job_adds_its_cost_at_the_catalogue_price(runtime):
    pricing = runtime.resolver.catalogue().find("yandexgpt").pricing
    assert pricing is not None and pricing.currency == "RUB"
    plan = runtime.resolver.plan("yandexgpt:rc")
    request = JobRequest(model="yandexgpt:rc", messages=[{"role": "user", "content": "Hi"}])
    with runtime.sessions() as session:
        spec = JobSpec.build(request, plan, stream=False)
        lifecycle.create(session, "c1", "owner", plan.primary, spec, "interactive")
        session.commit()
    ctx = dataclasses.replace(
        runtime.worker_context, providers=lambda name: AnsweringProvider(1000, 500)
    )
    before = cost()
    assert execute_job(ctx, "c1").status == "succeeded"
    expected = (1000 * pricing.prompt_per_1k + 500 * pricing.completion_per_1k) / 1000
    assert cost() - before == pytest.approx(expected)


def test_a_model_without_a_price_adds_nothing():
    labels = ("gigachat", "GigaChat", "latest")
    before = REGISTRY.get_sample_value(
        "llmgw_cost_total",
        {"provider": "gigachat", "model": "GigaChat", "channel": "latest", "currency": "USD"},
    )
    observe_cost(None, labels, Usage(100, 100, 200))
    observe_cost(Pricing("USD", 0.5, 1.5), labels, Usage(2000, 1000, 3000))
    after = REGISTRY.get_sample_value(
        "llmgw_cost_total",
        {"provider": "gigachat", "model": "GigaChat", "channel": "latest", "currency": "USD"},
    )
    assert after - (before or 0.0) == pytest.approx(2.5)
