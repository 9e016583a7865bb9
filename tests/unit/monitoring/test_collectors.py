"""Queue depth and circuit state, read from Redis at scrape time.

Messages are published by our own Celery app through kombu's Redis transport onto fakeredis
(kombu's channel is given a fakeredis connection class), so the lists counted are the ones a
real broker holds, priority lists included."""

from __future__ import annotations

import fakeredis
import kombu.transport.redis
import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobs.dispatch import CeleryDispatcher
from llmgw.celery import make_celery
from llmgw.settings import Settings
from monitoring.collectors import CatalogueCircuits, RedisStateCollector
from monitoring.metrics import exposition
from routing.breaker import CircuitBreaker
from workers.queues import all_queue_names

NOW = 1_000_000.0


@pytest.fixture()
def server():
    return fakeredis.FakeServer()


@pytest.fixture()
def client(server):
    return fakeredis.FakeRedis(server=server)


@pytest.fixture()
def celery_on_fakeredis(server, monkeypatch):
    class Connection(fakeredis.FakeRedisConnection):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "server": server})

    monkeypatch.setattr(kombu.transport.redis.Channel, "connection_class", Connection)
    return make_celery(Settings(redis_url="redis://fake.invalid:6379/0", _env_file=None))


def samples(collector, name: str) -> dict[tuple, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_queue_depth_sums_the_priority_lists_kombu_writes(client, celery_on_fakeredis):
    for priority in ("interactive", "interactive", "batch"):
        CeleryDispatcher(celery_on_fakeredis).publish("job", "yandexgpt.latest", priority)
    CeleryDispatcher(celery_on_fakeredis).publish("job", "gigachat.rc", "batch")
    assert client.exists("yandexgpt.latest\x06\x169")  # the layout we rely on

    depth = samples(RedisStateCollector(lambda: client, all_queue_names()), "llmgw_queue_depth")

    assert depth[(("queue", "yandexgpt.latest"),)] == 3
    assert depth[(("queue", "gigachat.rc"),)] == 1
    assert depth[(("queue", "gigachat.latest"),)] == 0
    assert len(depth) == len(all_queue_names())


def test_circuit_state_for_circuits_that_exist(client):
    clock = [NOW]
    breaker = CircuitBreaker(client, min_calls=2, cooldown_seconds=30, clock=lambda: clock[0])
    for _ in range(2):
        breaker.record_failure("yandexgpt:yandexgpt:rc")  # open until NOW + 30
    breaker.record_success("gigachat:GigaChat:latest")  # closed, counting
    for _ in range(2):
        breaker.record_failure("gigachat:GigaChat-Pro:rc")
    clock[0] = NOW + 31
    assert breaker.allow("gigachat:GigaChat-Pro:rc")  # the probe: half-open
    for _ in range(2):
        breaker.record_failure("yandexgpt:yandexgpt-lite:latest")  # open, deadline passes
    keys = [
        "yandexgpt:yandexgpt:rc",
        "gigachat:GigaChat:latest",
        "gigachat:GigaChat-Pro:rc",
        "yandexgpt:yandexgpt-lite:latest",
        "gigachat:GigaChat:rc",  # no state in Redis: closed and idle, no series
    ]
    collector = RedisStateCollector(lambda: client, [], lambda: keys, clock=lambda: NOW + 40)

    state = samples(collector, "llmgw_circuit_state")

    def key(provider, model, channel):
        return (("channel", channel), ("model", model), ("provider", provider))

    assert state == {
        key("yandexgpt", "yandexgpt", "rc"): 1,  # open, but its deadline passed: next call probes
        key("gigachat", "GigaChat", "latest"): 0,
        key("gigachat", "GigaChat-Pro", "rc"): 1,
        key("yandexgpt", "yandexgpt-lite", "latest"): 2,
    }


def test_one_pipeline_per_scrape(client):
    calls = []

    class Counting:
        def pipeline(self, **kwargs):
            calls.append(kwargs)
            return client.pipeline(**kwargs)

    keys = ["yandexgpt:yandexgpt:rc", "gigachat:GigaChat:latest"]
    collector = RedisStateCollector(lambda: Counting(), all_queue_names(), lambda: keys)
    assert samples(collector, "llmgw_redis_up") == {(): 1}
    assert calls == [{"transaction": False}]


def test_redis_down_gives_empty_families_and_up_zero():
    down = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    collector = RedisStateCollector(lambda: down, all_queue_names(), lambda: ["a:b:c"])

    text = generate_latest(_registry(collector)).decode()

    assert "llmgw_redis_up 0.0" in text
    assert "llmgw_queue_depth{" not in text
    assert "llmgw_circuit_state{" not in text


def test_exposition_adds_the_collector_in_multiprocess_mode(client, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    client.rpush("gigachat.latest", b"{}")

    body, _ = exposition(RedisStateCollector(lambda: client, ["gigachat.latest"]))

    assert 'llmgw_queue_depth{queue="gigachat.latest"} 1.0' in body.decode()


def test_metrics_endpoint_serves_queue_depth_and_circuits(unit_client, unit_runtime):
    unit_runtime.redis.rpush("yandexgpt.rc\x06\x163", b"{}", b"{}")
    breaker = CircuitBreaker(unit_runtime.redis, min_calls=1)
    breaker.record_failure("yandexgpt:yandexgpt:rc")

    text = unit_client.get("/metrics").get_data(as_text=True)

    assert 'llmgw_queue_depth{queue="yandexgpt.rc"} 2.0' in text
    assert 'llmgw_queue_depth{queue="llmgw.default"} 0.0' in text
    expected = 'llmgw_circuit_state{channel="rc",model="yandexgpt",provider="yandexgpt"} 2.0'
    assert expected in text
    assert "llmgw_redis_up 1.0" in text


def test_metrics_endpoint_answers_when_redis_is_down(unit_client, unit_runtime):
    pool = redis.BlockingConnectionPool.from_url("redis://127.0.0.1:1/0")  # as Runtime builds it
    unit_runtime.__dict__["redis"] = redis.Redis(connection_pool=pool)

    response = unit_client.get("/metrics")

    assert response.status_code == 200
    assert "llmgw_redis_up 0.0" in response.get_data(as_text=True)


def _registry(collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_catalogue_circuits_are_reread_after_the_ttl_and_kept_on_failure(unit_runtime, monkeypatch):
    now = [0.0]
    circuits = CatalogueCircuits(unit_runtime.resolver, ttl=60, clock=lambda: now[0])
    first = circuits()
    assert "yandexgpt:yandexgpt:rc" in first

    reads = []

    def unreadable():
        reads.append(unit_runtime)
        raise RuntimeError("database down")

    monkeypatch.setattr(unit_runtime.resolver, "catalogue", unreadable)
    now[0] = 30.0
    assert circuits() == first
    assert reads == []  # within the TTL: not re-read
    now[0] = 61.0
    assert circuits() == first  # the re-read failed: the last good list stays
    assert reads == [unit_runtime]


def test_metrics_endpoint_exports_the_sunset_of_each_deprecated_version(unit_client):
    from datetime import UTC, datetime

    from prometheus_client.parser import text_string_to_metric_families

    from routing.catalogue import load_seed

    text = unit_client.get("/metrics").get_data(as_text=True)
    exported = {
        (s.labels["provider"], s.labels["model"], s.labels["channel"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "llmgw_model_sunset_timestamp_seconds"
    }
    expected = {
        (spec["provider"], spec["name"], version["channel"]): datetime.fromisoformat(
            version["sunset_at"]
        )
        .replace(tzinfo=UTC)
        .timestamp()
        for spec in load_seed()["models"]
        for version in spec["versions"]
        if version.get("sunset_at")
    }
    assert expected and exported == expected


def test_sunsets_are_exported_even_when_redis_is_down():
    down = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    collector = RedisStateCollector(
        lambda: down, ["q"], lambda: [], sunsets=lambda: {"yandexgpt:yandexgpt:deprecated": 1.8e9}
    )
    text = generate_latest(_registry(collector)).decode()
    assert "llmgw_redis_up 0.0" in text
    expected = 'channel="deprecated",model="yandexgpt",provider="yandexgpt"} 1.8e+09'
    assert f"llmgw_model_sunset_timestamp_seconds{{{expected}" in text
