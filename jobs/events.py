"""The job's signals across processes, writer and reader side by side in one module.

- Done: after a job's terminal status is committed its status is published on
  `storage.keys.job_done_channel`; a waiter subscribes, re-reads the row, and sleeps until a
  message or at most `RECHECK_SECONDS` (a lost message costs a re-read, never the result).
- Stream: a `stream: true` job's answer goes to `storage.keys.job_stream` as it is
  generated: `delta` `{content}` per piece, then exactly one of `done` (the result without
  `content`, plus `status`; written after the result is committed) or `error`
  `{code, message}`. `JobStream` writes, `StreamReader` and `job_events` read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from jobs.status import ANSWERED, TERMINAL
from storage import keys

log = logging.getLogger(__name__)
RECHECK_SECONDS = 5.0
# XREAD blocks in slices this long (below the Redis client's socket timeout); between slices a
# quiet stream is checked against the job's row, so that a job that ended without a stream
# event (every candidate skipped, cancelled while queued, a replay whose stream expired) ends
# the reader too.
STREAM_BLOCK_SECONDS = 2.0
Event = tuple[str, dict[str, Any]]


# -- done ------------------------------------------------------------------------------------


def notify_done(redis: Any, job_id: str, status: str) -> None:
    """Wake long-polls; best effort, since waiters re-read the row anyway."""
    try:
        redis.publish(keys.job_done_channel(job_id), status)
    except Exception:  # a missed wake-up costs a waiter a re-read, never the result
        log.warning("could not publish the end of job %s", job_id, exc_info=True)


def wait_until_ended(
    redis: Any, job_id: str, read_status: Callable[[], str], timeout: float
) -> str:
    """The job's status once it is terminal, or as last read when `timeout` has passed.

    Subscribed (confirmed by Redis) before the first read, so an end committed after that
    read is always heard. A published terminal status is taken as it comes (it is published
    after the commit); the row is re-read only every `RECHECK_SECONDS` of silence.
    """
    pubsub = redis.pubsub()
    pubsub.subscribe(keys.job_done_channel(job_id))
    try:
        deadline = time.monotonic() + timeout
        _confirmed(pubsub, deadline)
        status = read_status()
        recheck = time.monotonic() + RECHECK_SECONDS
        while status not in TERMINAL:
            now = time.monotonic()
            if now >= deadline:
                return status
            message = pubsub.get_message(timeout=min(deadline, recheck) - now)
            if message is not None and message["type"] == "message":
                published = _text(message["data"])
                status = published if published in TERMINAL else status
            elif time.monotonic() >= recheck:
                status, recheck = read_status(), time.monotonic() + RECHECK_SECONDS
        return status
    finally:
        pubsub.close()


def _confirmed(pubsub: Any, deadline: float) -> None:
    """Wait for Redis to confirm the subscription (bounded by the deadline)."""
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=min(1.0, deadline - time.monotonic()))
        if message is not None and message["type"] == "subscribe":
            return


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# -- stream: the writer ----------------------------------------------------------------------


class JobStream:
    """The writing end of one job's Redis stream."""

    def __init__(self, redis: Any, job_id: str) -> None:
        self._redis = redis
        self.key = keys.job_stream(job_id)
        self.deltas = 0

    def started(self) -> bool:
        """Events were published for this job before (by a worker that was then lost)."""
        return bool(self._redis.xlen(self.key))

    def delta(self, content: str) -> None:
        self.publish("delta", content=content)
        self.deltas += 1

    def publish(self, event: str, **data: Any) -> None:
        fields = {"event": event, "data": json.dumps(data, ensure_ascii=False)}
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(self.key, fields, maxlen=keys.JOB_STREAM_MAXLEN, approximate=True)
        pipe.expire(self.key, keys.JOB_STREAM_TTL_SECONDS)
        pipe.execute()

    def publish_safely(self, event: str, **data: Any) -> None:
        """The job's row is the record; a reader that misses this event falls back to it."""
        try:
            self.publish(event, **data)
        except Exception:
            log.warning("could not publish %s to %s", event, self.key, exc_info=True)


# -- stream: the reader ----------------------------------------------------------------------


class StreamReader:
    """Reads one job's stream from its start; keeps the text so far and whether it ended."""

    def __init__(self, redis: Any, job_id: str) -> None:
        self._redis, self._job_id = redis, job_id
        self._key, self._last = keys.job_stream(job_id), "0-0"
        self.text, self.ended = "", False

    def read(self, block_seconds: float) -> list[Event]:
        """The next events, up to and including an end (`done`/`error`); [] when quiet."""
        reply: Any = self._redis.xread({self._key: self._last}, block=int(block_seconds * 1000))
        events: list[Event] = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                self._last = entry_id
                events.append(self._event(fields[b"event"].decode(), json.loads(fields[b"data"])))
                if self.ended:
                    return events
        return events

    def _event(self, event: str, data: dict[str, Any]) -> Event:
        if event == "delta":
            self.text += data["content"]
        else:
            self.ended = True
        return event, (data | {"job_id": self._job_id} if event == "error" else data)


def job_events(
    redis: Any, job_id: str, read_end: Callable[[], dict[str, Any] | None], idle: float
) -> Iterator[Event]:
    """The job's stream events in order, ending with `done` or `error` (with `job_id`).

    `read_end()` gives the job's end as its row tells it (`ended_row`) or None while it runs.
    `idle` bounds the wait for each event (the first included), not the whole answer. A quiet
    stream whose job's row has ended gets one more read, then its end is taken from the row.
    """
    reader = StreamReader(redis, job_id)
    quiet_since, row = time.monotonic(), None
    while time.monotonic() - quiet_since < idle:
        batch = reader.read(STREAM_BLOCK_SECONDS)
        if batch:
            quiet_since = time.monotonic()
            yield from batch
            if reader.ended:
                return
        elif row is not None:
            yield from events_from_row(job_id, row, reader.text)
            return
        else:
            row = read_end()
    message = f"Nothing more of the answer came for {idle:g} s; poll the job for its result."
    yield "error", stream_error(job_id, "job_timeout", message)


def ended_row(status: str, result: dict | None, code: str | None, message: str | None):
    """A finished job's end as `events_from_row` reads it; None while the job runs."""
    if status not in TERMINAL:
        return None
    return {
        "status": status,
        "result": result,
        "code": code or status,
        "message": message or f"The job ended as {status}.",
    }


def events_from_row(job_id: str, row: dict[str, Any], sent: str) -> Iterator[Event]:
    """The rest of the answer from a finished job's row, when its stream has no end."""
    result = row["result"]
    if row["status"] not in ANSWERED:
        yield "error", stream_error(job_id, row["code"], row["message"])
    elif result is None or not result["content"].startswith(sent):
        message = "The job's stream is no longer available; read the job for its result."
        yield "error", stream_error(job_id, "stream_unavailable", message)
    else:
        if result["content"] != sent:
            yield "delta", {"content": result["content"][len(sent) :]}
        yield "done", {k: v for k, v in result.items() if k != "content"}


def stream_error(job_id: str, code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message, "job_id": job_id}
