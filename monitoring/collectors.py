"""State read from Redis at scrape time: queue depths and circuit breakers.

Counters live where things happen (`monitoring.metrics`); these gauges describe state that
already sits in Redis, so the API's `/metrics` reads it when Prometheus asks instead of
keeping a copy up to date. Read-only, one pipeline per scrape, labels bounded by the queue
topology and the catalogue. If Redis cannot be read the queue and circuit families are
empty and `llmgw_redis_up` is 0; nothing raises out of `/metrics`.

Queue depth is what Flower shows and celery-exporter does not: kombu's Redis transport keeps
a queue as a list named like it, plus one list per priority step, `<queue>\\x06\\x16<step>`
(steps 3, 6, 9; step 0 is the bare name). Reserved (prefetched, unacked) messages are not
waiting and are not counted.

Circuit state per catalogue circuit whose hash (`storage.keys.circuit`) exists, decoded by
`routing.breaker.observed_state`: 0 closed (counting calls), 1 half-open (probing, or open
past its deadline so the next call probes), 2 open (refusing). No key means closed and
idle: no series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime

import redis
from kombu.transport.redis import Channel as _RedisChannel
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.backoff import NoBackoff
from redis.retry import Retry

from routing.breaker import STATE_FIELDS, observed_state
from storage import keys as redis_keys

log = logging.getLogger(__name__)

# name -> (help, label names); the dashboard and alert tests read this.
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "llmgw_queue_depth": (
        "Messages waiting in a Celery queue (all priority lists), read from Redis at scrape.",
        ("queue",),
    ),
    "llmgw_circuit_state": (
        "Circuit breaker per version: 0 closed, 1 half-open, 2 open (refusing calls).",
        ("provider", "model", "channel"),
    ),
    "llmgw_redis_up": ("1 if this scrape could read queue and circuit state from Redis.", ()),
    "llmgw_model_sunset_timestamp_seconds": (
        "When a version goes away (its sunset, Unix time), per version that has one and is "
        "not retired; read from the catalogue, so alerts can see traffic near a sunset.",
        ("provider", "model", "channel"),
    ),
}
CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class RedisStateCollector(Collector):
    def __init__(
        self,
        client: Callable[[], redis.Redis],
        queues: Sequence[str],
        circuit_keys: Callable[[], Iterable[str]] = tuple,
        *,
        sunsets: Callable[[], dict[str, float]] = dict,
        sep: str = _RedisChannel.sep,
        priority_steps: Sequence[int] = tuple(_RedisChannel.priority_steps),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.queues, self.circuit_keys = client, list(queues), circuit_keys
        self.sunsets = sunsets
        self.sep, self.priority_steps, self.clock = sep, list(priority_steps), clock

    def describe(self) -> Iterator[Metric]:
        return iter(_family(name) for name in FAMILIES)

    def collect(self) -> Iterator[Metric]:
        depth, circuits, up, sunset = (_family(name) for name in FAMILIES)
        try:
            depths, states = self.read()
        except Exception as exc:  # Redis down: report it as a gauge, never fail the scrape
            log.warning("queue and circuit state unreadable: %r", exc)
            up.add_metric([], 0)
            return iter((depth, circuits, up, self._sunsets(sunset)))
        for queue, count in depths.items():
            depth.add_metric([queue], count)
        for key, value in states.items():
            circuits.add_metric(key.split(":", 2), value)
        up.add_metric([], 1)
        return iter((depth, circuits, up, self._sunsets(sunset)))

    def _sunsets(self, family: GaugeMetricFamily) -> GaugeMetricFamily:
        for key, timestamp in sorted(self.sunsets().items()):
            family.add_metric(key.split(":", 2), timestamp)
        return family

    def read(self) -> tuple[dict[str, int], dict[str, int]]:
        """({queue: waiting messages}, {circuit key: state value}) in one round trip."""
        keys = [key for key in self.circuit_keys() if key.count(":") >= 2]
        pipe = self.client().pipeline(transaction=False)
        for queue in self.queues:
            for name in self.priority_lists(queue):
                pipe.llen(name)
        for key in keys:
            pipe.hmget(redis_keys.circuit(key), *STATE_FIELDS)
        replies = iter(pipe.execute())
        steps = len(self.priority_steps)
        depths = {q: sum(int(next(replies)) for _ in range(steps)) for q in self.queues}
        now = self.clock()
        states = {key: _circuit_value(next(replies), now) for key in keys}
        return depths, {key: value for key, value in states.items() if value is not None}

    def priority_lists(self, queue: str) -> list[str]:
        """The Redis lists kombu keeps for one queue (`Channel._q_for_pri`)."""
        return [f"{queue}{self.sep}{step}" if step else queue for step in self.priority_steps]


def _family(name: str) -> GaugeMetricFamily:
    help_text, labels = FAMILIES[name]
    return GaugeMetricFamily(name, help_text, labels=labels)


def _circuit_value(raw: list, now: float) -> int | None:
    state = observed_state(raw, now)
    return None if state is None else CIRCUIT_VALUES[state]


def redis_state_collector(client: redis.Redis, resolver, queues: Sequence[str]):
    """The collector for one process: every Celery queue, every catalogue circuit. It reads
    through the process's pool without redis-py's retries: a scrape of a down Redis answers
    at once with llmgw_redis_up 0 instead of backing off for seconds."""
    fast = redis.Redis(connection_pool=client.connection_pool, retry=_NO_RETRY)
    circuits = CatalogueCircuits(resolver)
    return RedisStateCollector(lambda: fast, queues, circuits, sunsets=circuits.sunsets)


class CatalogueCircuits:
    """Circuit keys of the catalogue, and the sunsets of its versions, re-read at most every
    `ttl` seconds (so most scrapes touch Redis once); the last good lists are kept if the
    catalogue cannot be read."""

    def __init__(self, resolver, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.resolver, self.ttl, self.clock = resolver, ttl, clock
        self._keys: list[str] = []
        self._sunsets: dict[str, float] = {}
        self._read_at: float | None = None

    def __call__(self) -> list[str]:
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.ttl:
            self._read_at = now
            try:
                self._keys, self._sunsets = self._read()
            except Exception:  # the previous list is still the best answer
                log.warning("catalogue unreadable; circuit keys not refreshed", exc_info=True)
        return self._keys

    def sunsets(self) -> dict[str, float]:
        """{circuit key: sunset as Unix time} of the versions that have one, not retired."""
        return self._sunsets

    def _read(self) -> tuple[list[str], dict[str, float]]:
        catalogue = self.resolver.catalogue()
        versions = [(m, v) for m in catalogue.models.values() for v in m.versions]
        keys = sorted(redis_keys.circuit_id(m.provider, m.name, v.channel) for m, v in versions)
        sunsets = {
            redis_keys.circuit_id(m.provider, m.name, v.channel): _epoch(v.sunset_at)
            for m, v in versions
            if v.sunset_at is not None and v.status != "retired"
        }
        return keys, sunsets


def _epoch(naive_utc: datetime) -> float:
    """Catalogue times are naive UTC (storage.models.utcnow)."""
    return naive_utc.replace(tzinfo=UTC).timestamp()


_NO_RETRY = Retry(NoBackoff(), 0)
