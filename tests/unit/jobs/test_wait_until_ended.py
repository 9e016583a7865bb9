"""`events.wait_until_ended`: subscribed before the first read, a published end is taken as it
comes (no re-read of the row), silence costs a re-read every `RECHECK_SECONDS`."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest

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
def redis():
    return fakeredis.FakeRedis()


def later(seconds: float, action) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


def test_a_published_end_is_taken_without_reading_the_row_again(redis):
    row = Row("running")
    later(0.2, lambda: events.notify_done(redis, "j1", "succeeded"))

    assert events.wait_until_ended(redis, "j1", row, timeout=10) == "succeeded"
    assert row.reads == 1


def test_an_end_already_in_the_row_returns_at_once(redis):
    row = Row("failed")
    started = time.monotonic()

    assert events.wait_until_ended(redis, "j1", row, timeout=10) == "failed"
    assert row.reads == 1 and time.monotonic() - started < 1


def test_a_non_terminal_message_does_not_end_the_wait(redis):
    row = Row("queued")
    later(0.1, lambda: redis.publish(keys.job_done_channel("j1"), "running"))

    assert events.wait_until_ended(redis, "j1", row, timeout=0.6) == "queued"


def test_silence_is_covered_by_re_reading_the_row(redis, monkeypatch):
    monkeypatch.setattr(events, "RECHECK_SECONDS", 0.2)
    row = Row("running")
    later(0.3, lambda: setattr(row, "status", "succeeded"))  # ended, its message lost

    assert events.wait_until_ended(redis, "j1", row, timeout=10) == "succeeded"
    assert row.reads >= 2


def test_the_timeout_returns_the_last_status_read(redis):
    started = time.monotonic()

    assert events.wait_until_ended(redis, "j1", Row("running"), timeout=0.3) == "running"
    assert 0.25 <= time.monotonic() - started < 3
