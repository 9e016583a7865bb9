"""The resolution cache: shared snapshot in Redis, in-process copy, invalidation by version."""

from __future__ import annotations

import json

import redis

from routing import ops
from routing.cache import (
    SNAPSHOT_TTL_SECONDS,
    VERSION_KEY,
    Resolver,
    bump_catalogue_version,
    snapshot_scope,
)
from storage import keys


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def edit_without_bump(runtime):
    """Change the database behind the caches' back (no version bump)."""
    with runtime.sessions() as session:
        ops.promote(session, "yandexgpt", actor="t")
        session.commit()


def test_cached_resolution_matches_the_database(unit_runtime):
    resolver = Resolver(unit_runtime.sessions, unit_runtime.redis)
    route = resolver.resolve("yandexgpt-pro:rc")
    assert (route.model, route.upstream_id, route.version) == (
        "yandexgpt",
        "yandexgpt/rc",
        "22.05.2025",
    )
    raw = unit_runtime.redis.get(keys.CATALOGUE_SNAPSHOT_PREFIX + "0")
    assert "yandexgpt" in {m["name"] for m in json.loads(raw)["models"]}
    assert 0 < unit_runtime.redis.ttl(keys.CATALOGUE_SNAPSHOT_PREFIX + "0") <= SNAPSHOT_TTL_SECONDS


def test_a_change_is_invisible_until_the_version_is_bumped(unit_runtime):
    resolver = Resolver(unit_runtime.sessions, unit_runtime.redis)
    assert resolver.resolve("yandexgpt").upstream_id == "yandexgpt/latest"
    edit_without_bump(unit_runtime)
    assert resolver.resolve("yandexgpt").upstream_id == "yandexgpt/latest"
    assert Resolver(unit_runtime.sessions, unit_runtime.redis).resolve("yandexgpt").upstream_id == (
        "yandexgpt/latest"
    ), "a second process shares the Redis snapshot"
    bump_catalogue_version(unit_runtime.redis)
    assert resolver.resolve("yandexgpt").upstream_id == "yandexgpt/rc"


def test_apply_op_invalidates_every_resolver_at_once(unit_runtime):
    resolvers = [Resolver(unit_runtime.sessions, unit_runtime.redis) for _ in range(3)]
    assert {r.resolve("GigaChat-Pro").upstream_id for r in resolvers} == {"GigaChat-Pro"}
    ops.apply_op(unit_runtime.sessions, unit_runtime.redis, ops.promote, "GigaChat-Pro", actor="t")
    assert {r.resolve("GigaChat-Pro").upstream_id for r in resolvers} == {"GigaChat-Pro-preview"}
    assert unit_runtime.redis.get(VERSION_KEY) == b"1"


def test_in_process_copy_expires_after_local_ttl(unit_runtime):
    clock = Clock()
    resolver = Resolver(unit_runtime.sessions, unit_runtime.redis, local_ttl=5, clock=clock)
    resolver.resolve("yandexgpt")
    edit_without_bump(unit_runtime)
    unit_runtime.redis.delete(keys.CATALOGUE_SNAPSHOT_PREFIX + "0")  # as if its TTL ran out
    clock.now = 4.9
    assert resolver.resolve("yandexgpt").upstream_id == "yandexgpt/latest"
    clock.now = 5.1
    assert resolver.resolve("yandexgpt").upstream_id == "yandexgpt/rc"


def test_redis_down_falls_back_to_the_database(unit_settings):
    from llmgw.container import Container

    runtime = Container(unit_settings)
    runtime.__dict__["redis"] = redis.Redis(port=1, socket_connect_timeout=0.2)
    resolver = Resolver(runtime.sessions, runtime.redis)
    assert resolver.resolve("GigaChat").upstream_id == "GigaChat"


def test_plan_through_the_resolver(unit_runtime):
    result = unit_runtime.resolver.plan("yandexgpt:rc")
    assert [c.route.channel for c in result.candidates] == ["rc", "latest", "deprecated"]
    assert unit_runtime.resolver is unit_runtime.resolver


def test_the_redis_snapshot_round_trips_everything_resolution_reads(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.set_key_policy(session, "user1", actor="t", cross_provider=True)
        session.commit()
    first = Resolver(unit_runtime.sessions, unit_runtime.redis).catalogue()
    second = Resolver(unit_runtime.sessions, unit_runtime.redis).catalogue()  # from Redis
    assert second == first and second.key_policies == {"user1": True}


class CountingRedis:
    """The runtime's Redis, counting the catalogue-version reads."""

    def __init__(self, inner) -> None:
        self.inner, self.version_reads = inner, 0

    def get(self, key):
        self.version_reads += key == VERSION_KEY
        return self.inner.get(key)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_one_version_read_per_scope_and_a_bump_in_it_reads_again(unit_runtime):
    counting = CountingRedis(unit_runtime.redis)
    resolver = Resolver(unit_runtime.sessions, counting)  # type: ignore[arg-type]
    with snapshot_scope():
        for _ in range(5):
            assert resolver.resolve("yandexgpt").upstream_id == "yandexgpt/latest"
        assert counting.version_reads == 1
        edit_without_bump(unit_runtime)
        assert bump_catalogue_version(unit_runtime.redis) == 1  # an admin change in the request
        assert resolver.resolve("yandexgpt").upstream_id == "yandexgpt/rc"
        assert counting.version_reads == 2
    resolver.resolve("yandexgpt")
    resolver.resolve("yandexgpt")
    assert counting.version_reads == 4  # outside a scope: every resolution reads the version
