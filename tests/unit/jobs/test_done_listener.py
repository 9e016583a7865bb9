"""`events.DoneListener`: one pub/sub connection per process; a waiter registers before its
first read, a published end is taken as it comes (no re-read of the row), silence costs a
re-read every `RECHECK_SECONDS`, and a re-made subscription makes every waiter read again."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisDown

from jobs import events
from storage import keys


class Row:
    """The job's row as the waiter reads it; counts the reads."""

    def __init__(self, status: str) -> None:
        self.status, self.reads = status, 0

    def __call__(self) -> str:
        self.reads += 1
        return self.status


@pytest.fixture()
def server():
    return fakeredis.FakeServer()


@pytest.fixture()
def redis(server):
    return fakeredis.FakeRedis(server=server)


@pytest.fixture()
def listener(redis):
    done = events.DoneListener(redis, retry_seconds=0.05)
    done._start()
    assert done.ready.wait(5)
    yield done
    done.close()


def later(seconds: float, action) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


def test_a_published_end_is_taken_without_reading_the_row_again(redis, listener):
    row = Row("running")
    later(0.2, lambda: events.notify_done(redis, "j1", "succeeded"))

    assert listener.wait("j1", row, timeout=10) == "succeeded"
    assert row.reads == 1


def test_another_jobs_end_does_not_end_the_wait(redis, listener):
    later(0.1, lambda: events.notify_done(redis, "j2", "succeeded"))

    assert listener.wait("j1", Row("running"), timeout=0.5) == "running"


def test_every_waiter_of_a_job_hears_its_end(redis, listener):
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(listener.wait("j1", Row("queued"), 10)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # all three registered
    events.notify_done(redis, "j1", "failed")
    for thread in threads:
        thread.join(5)

    assert results == ["failed"] * 3
    assert listener._waiters == {}  # each waiter unregisters


def test_an_end_already_in_the_row_returns_at_once(listener):
    row = Row("failed")
    started = time.monotonic()

    assert listener.wait("j1", row, timeout=10) == "failed"
    assert row.reads == 1 and time.monotonic() - started < 1


def test_a_non_terminal_message_does_not_end_the_wait(redis, listener):
    row = Row("queued")
    later(0.1, lambda: redis.publish(keys.job_done_channel("j1"), "running"))

    assert listener.wait("j1", row, timeout=0.6) == "queued"


def test_silence_is_covered_by_re_reading_the_row(listener, monkeypatch):
    monkeypatch.setattr(events, "RECHECK_SECONDS", 0.2)
    row = Row("running")
    later(0.3, lambda: setattr(row, "status", "succeeded"))  # ended, its message lost

    assert listener.wait("j1", row, timeout=10) == "succeeded"
    assert row.reads >= 2


def test_the_timeout_returns_the_last_status_read(listener):
    started = time.monotonic()

    assert listener.wait("j1", Row("running"), timeout=0.3) == "running"
    assert 0.25 <= time.monotonic() - started < 3


def test_a_lost_connection_makes_waiters_read_their_rows(server, listener):
    """An end published while the subscription is down is unheard: once it is made again,
    every waiter reads its row (not only after `RECHECK_SECONDS`)."""
    row = Row("running")
    waited: list[str] = []
    thread = threading.Thread(target=lambda: waited.append(listener.wait("j1", row, 10)))
    started = time.monotonic()
    thread.start()
    time.sleep(0.2)
    server.connected = False
    assert wait_for(lambda: not listener.ready.is_set())
    row.status = "succeeded"  # committed while Redis was away; its message reached nobody
    server.connected = True
    thread.join(5)

    assert waited == ["succeeded"]
    assert time.monotonic() - started < events.RECHECK_SECONDS


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_waiter_without_a_subscription_is_told_redis_is_down(server, monkeypatch):
    """Redis down: a new waiter raises the client's `ConnectionError` (the API's 503), once
    `READY_SECONDS` have passed without a subscription, without reading the row."""
    monkeypatch.setattr(events, "READY_SECONDS", 0.3)
    server.connected = False
    listener = events.DoneListener(fakeredis.FakeRedis(server=server), retry_seconds=0.05)
    row = Row("running")
    try:
        with pytest.raises(RedisDown):
            listener.wait("j1", row, timeout=10)
        assert row.reads == 0
    finally:
        listener.close()


def test_a_job_registered_before_it_is_published_is_not_read_first(redis, listener):
    """`submit_and_wait`: the waiter registers before the job exists, so an end published
    even before `submit` returns is heard, and the row is never read."""
    from jobs.service import submit_and_wait
    from jobs.submit import Submitted

    def submit(job_id: str) -> Submitted:
        events.notify_done(redis, job_id, "succeeded")  # a worker faster than the API
        return Submitted(job_id, True, {})

    def no_sessions():
        raise AssertionError("the row was read")

    submitted, status = submit_and_wait(no_sessions, listener, submit, "owner", timeout=10)

    assert status == "succeeded" and submitted.created
    assert listener._waiters == {}
