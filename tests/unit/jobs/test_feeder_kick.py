"""The feeder's kick debounce and per-batch lock, on fakeredis."""

from __future__ import annotations

import fakeredis
import pytest

from jobs.feeder import locked, request_refill
from storage import keys


@pytest.fixture()
def redis():
    return fakeredis.FakeRedis()


def test_one_kick_per_batch_is_in_flight_until_the_feeder_takes_it(redis):
    sent: list[str] = []
    assert request_refill(redis, "b1", sent.append)
    assert not request_refill(redis, "b1", sent.append)  # a second line end: already asked
    assert request_refill(redis, "b2", sent.append)  # another batch has its own kick
    assert sent == ["b1", "b2"]
    assert 0 < redis.ttl(keys.batch_kick("b1")) <= keys.BATCH_KICK_TTL
    redis.delete(keys.batch_kick("b1"))  # the refill took it as it started a round
    assert request_refill(redis, "b1", sent.append)
    assert sent == ["b1", "b2", "b1"]


def test_a_kick_that_cannot_be_sent_leaves_the_next_line_end_to_ask_again(redis):
    def broken(_: str) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        request_refill(redis, "b1", broken)
    sent: list[str] = []
    assert request_refill(redis, "b1", sent.append) and sent == ["b1"]


def test_the_lock_admits_one_run_per_batch_and_is_released(redis):
    inner: list[int | None] = []

    def run() -> int:
        inner.append(locked(redis, "b1", lambda: 1))  # the same batch: refused
        inner.append(locked(redis, "b2", lambda: 2))  # another batch: runs
        return 7

    assert locked(redis, "b1", run) == 7
    assert inner == [None, 2]
    assert not redis.exists(keys.batch_feeder_lock("b1"))
    assert locked(redis, "b1", lambda: 3) == 3


def test_the_lock_is_released_when_the_run_fails(redis):
    def boom() -> int:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        locked(redis, "b1", boom)
    assert not redis.exists(keys.batch_feeder_lock("b1"))
    assert 0 < keys.BATCH_FEEDER_LOCK_TTL <= 60


def test_a_run_that_outlived_its_lock_does_not_release_its_successors(redis):
    def slow() -> int:
        redis.delete(keys.batch_feeder_lock("b1"))  # as if the TTL ran out mid-run
        assert locked(redis, "b1", lambda: 0) == 0  # a successor ran (and released its own)
        redis.set(keys.batch_feeder_lock("b1"), "successor")  # one holds it now
        return 1

    assert locked(redis, "b1", slow) == 1
    assert redis.get(keys.batch_feeder_lock("b1")) == b"successor"
