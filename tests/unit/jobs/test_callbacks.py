"""Callback delivery: signature, backoff schedule, and the durable delivery run against the
unit database and a receiver on 127.0.0.1 (due only once the job ended, claimed once,
retried on failure, never redirected, refused targets re-checked at delivery)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from api.callbacks import callback_body
from jobs import callbacks, lifecycle, signing
from jobs.callback_url import UrlPolicy, parse_networks
from jobs.callbacks import CallbackConfig, Deliverer, RetrySchedule
from jobs.spec import JobRequest, JobSpec
from storage.models import CallbackDelivery
from tests.callback_receiver import CallbackReceiver

MASTER = "m" * 40


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"id":"j1","status":"succeeded"}'
    expected = hmac.new(b"whsec_abc", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signing.signature("whsec_abc", 1700000000, body) == f"sha256={expected}"
    assert signing.verify("whsec_abc", 1700000000, body, f"sha256={expected}")
    assert not signing.verify("whsec_abd", 1700000000, body, f"sha256={expected}")
    assert not signing.verify("whsec_abc", 1700000001, body, f"sha256={expected}")
    assert not signing.verify("whsec_abc", 1700000000, body + b" ", f"sha256={expected}")


def test_key_secrets_differ_by_key_version_and_master_and_are_stable():
    first = signing.key_secret(MASTER.encode(), "key1", 0)
    assert first == signing.key_secret(MASTER.encode(), "key1", 0)
    assert first.startswith("whsec_") and len(first) == len("whsec_") + 64
    others = {
        signing.key_secret(MASTER.encode(), "key2", 0),
        signing.key_secret(MASTER.encode(), "key1", 1),
        signing.key_secret(b"n" * 40, "key1", 0),
    }
    assert first not in others and len(others) == 3


def test_backoff_doubles_up_to_the_cap():
    schedule = RetrySchedule(base_seconds=10, max_delay_seconds=3600, window_seconds=86400)
    delays = [schedule.delay(n) for n in range(1, 11)]
    assert delays == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]
    assert schedule.delay(500) == 3600


def test_retries_stop_at_the_window():
    schedule = RetrySchedule(base_seconds=10, max_delay_seconds=3600, window_seconds=86400)
    first = datetime(2026, 12, 1)
    now, failed, times = first, 1, []
    while (at := schedule.next_attempt(first, now, failed)) is not None:
        times.append(at)
        now, failed = at, failed + 1
    assert times[-1] - first <= timedelta(hours=24)
    assert times[-1] + timedelta(seconds=3600) - first > timedelta(hours=24)
    assert len(times) == 31  # 10 s … 2560 s (9), then hourly until the day is up
    assert schedule.next_attempt(first, first + timedelta(hours=24), 3) is None


# -- delivery against the database -----------------------------------------------------------


@pytest.fixture()
def config():
    return CallbackConfig(
        signing_secret=SecretStr(MASTER),
        url_policy=UrlPolicy(allow_private=True),
        schedule=RetrySchedule(base_seconds=0.01, max_delay_seconds=0.01, window_seconds=60),
        timeout_seconds=5,
    )


def add_job(runtime, url: str, job_id: str = "j1") -> str:
    plan = runtime.resolver.plan("yandexgpt:rc")
    request = JobRequest(
        model="yandexgpt:rc", messages=[{"role": "user", "content": "Hi"}], callback_url=url
    )
    spec = JobSpec.build(request, plan, stream=False)
    assert spec.has_callback
    with runtime.sessions() as session:
        lifecycle.create(session, job_id, "owner1", plan.primary, spec, "interactive")
        callbacks.register(session, "owner1", url, job_id=job_id)
        session.commit()
    return job_id


def end(runtime, job_id: str) -> None:
    with runtime.sessions() as session:
        assert lifecycle.cancel(session, job_id)
        session.commit()


def row(runtime, job_id: str) -> CallbackDelivery:
    with runtime.sessions() as session:
        return session.query(CallbackDelivery).filter_by(job_id=job_id).one()


def test_a_job_callback_waits_for_the_end_then_is_delivered_once_signed(unit_runtime, config):
    with CallbackReceiver() as receiver:
        job_id = add_job(unit_runtime, receiver.url)
        deliverer = Deliverer(unit_runtime.sessions, config, render=callback_body)
        assert deliverer.deliver_due() == 0  # queued: not due
        end(unit_runtime, job_id)
        assert deliverer.deliver_due() == 1
        assert deliverer.deliver_due() == 0  # delivered: never again
    assert len(receiver.received) == 1
    got = receiver.received[0]
    body = json.loads(got.body)
    assert (body["id"], body["status"], body["object"]) == (job_id, "cancelled", "job")
    secret = signing.key_secret(MASTER.encode(), "owner1", 0)
    timestamp = int(got.headers["X-Llmgw-Timestamp"])
    assert signing.verify(secret, timestamp, got.body, got.headers["X-Llmgw-Signature"])
    assert got.headers["X-Llmgw-Event"] == "job.cancelled"
    assert got.headers["X-Llmgw-Secret-Version"] == "0"
    delivered = row(unit_runtime, job_id)
    assert got.headers["X-Llmgw-Delivery"] == delivered.id
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == (
        "delivered",
        1,
        200,
    )
    assert delivered.delivered_at is not None


def test_a_claim_is_taken_once(unit_runtime, config):
    job_id = add_job(unit_runtime, "http://127.0.0.1:9/unused")
    end(unit_runtime, job_id)
    deliverer = Deliverer(unit_runtime.sessions, config, render=callback_body)
    [(row_id, seen)] = deliverer.due()
    assert deliverer.claim(row_id, seen) is not None
    assert deliverer.claim(row_id, seen) is None  # the same attempt, a second worker
    assert deliverer.due() == []  # leased while the first one sends
    assert row(unit_runtime, job_id).attempts == 1


def counted(outcome: str) -> float:
    labels = {"kind": "job", "outcome": outcome}
    return REGISTRY.get_sample_value("llmgw_callback_deliveries_total", labels) or 0.0


def test_a_failing_receiver_is_retried_then_succeeds(unit_runtime, config):
    retrying, delivered = counted("retrying"), counted("delivered")
    with CallbackReceiver(statuses=[500, 302]) as receiver:
        job_id = add_job(unit_runtime, receiver.url)
        end(unit_runtime, job_id)
        deliverer = Deliverer(unit_runtime.sessions, config, render=callback_body)
        assert deliverer.deliver_due() == 0
        failed = row(unit_runtime, job_id)
        assert (failed.status, failed.attempts, failed.last_status_code) == ("pending", 1, 500)
        assert failed.last_error == "HTTP 500"
        for _ in range(100):  # the backoff is 10 ms here
            if deliverer.deliver_due():
                break
    paths = [r.path for r in receiver.received]
    assert paths == ["/hook", "/hook", "/hook"]  # the 302 was not followed
    ids = {r.headers["X-Llmgw-Delivery"] for r in receiver.received}
    assert len(ids) == 1
    done = row(unit_runtime, job_id)
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 3, 200)
    assert (counted("retrying") - retrying, counted("delivered") - delivered) == (2, 1)


def test_retries_end_as_failed_after_the_window(unit_runtime, config):
    quick = CallbackConfig(
        signing_secret=config.signing_secret,
        url_policy=config.url_policy,
        schedule=RetrySchedule(base_seconds=3600, max_delay_seconds=3600, window_seconds=60),
    )
    with CallbackReceiver(statuses=[503]) as receiver:
        job_id = add_job(unit_runtime, receiver.url)
        end(unit_runtime, job_id)
        Deliverer(unit_runtime.sessions, quick, render=callback_body).deliver_due()
    gave_up = row(unit_runtime, job_id)
    assert (gave_up.status, gave_up.attempts, gave_up.last_status_code) == ("failed", 1, 503)


def test_a_target_that_turned_private_is_not_called(unit_runtime, config):
    strict = CallbackConfig(signing_secret=config.signing_secret, schedule=config.schedule)
    with CallbackReceiver() as receiver:
        job_id = add_job(unit_runtime, receiver.url)
        end(unit_runtime, job_id)
        Deliverer(unit_runtime.sessions, strict, render=callback_body).deliver_due()
    assert receiver.received == []
    refused = row(unit_runtime, job_id)
    assert refused.status == "pending" and refused.attempts == 1
    assert refused.last_error is not None and "loopback" in refused.last_error


def test_without_a_signing_secret_nothing_is_claimed(unit_runtime, config):
    job_id = add_job(unit_runtime, "http://127.0.0.1:9/unused")
    end(unit_runtime, job_id)
    unsigned = CallbackConfig(url_policy=config.url_policy)
    assert Deliverer(unit_runtime.sessions, unsigned, render=callback_body).deliver_due() == 0
    assert row(unit_runtime, job_id).attempts == 0


def test_the_verification_snippet_of_docs_api_md_accepts_our_signatures():
    doc = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text("utf-8")
    [snippet] = re.findall(r"```python\n(def verify.*?|import hashlib.*?)```", doc, re.S)
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 (our own documentation)
    body, now = b'{"id":"j1"}', int(time.time())
    headers = {
        "X-Llmgw-Timestamp": str(now),
        "X-Llmgw-Signature": signing.signature("whsec_x", now, body),
    }
    assert scope["verify"]("whsec_x", headers, body)
    assert not scope["verify"]("whsec_y", headers, body)
    stale = {**headers, "X-Llmgw-Timestamp": str(now - 3600)}
    stale["X-Llmgw-Signature"] = signing.signature("whsec_x", now - 3600, body)
    assert not scope["verify"]("whsec_x", stale, body)


class Rebinding:
    """A resolver that answers `first` once, then `then` (a rebinding DNS server)."""

    def __init__(self, first: str, then: str) -> None:
        self.answers = [first]
        self.then = then
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return [self.answers.pop(0) if self.answers else self.then]


def test_a_name_rebound_between_the_check_and_the_connect_is_not_called(unit_runtime, config):
    strict = CallbackConfig(signing_secret=config.signing_secret, schedule=config.schedule)
    with CallbackReceiver() as receiver:
        port = receiver.server.server_port
        job_id = add_job(unit_runtime, f"http://hooks.example.test:{port}/hook")
        end(unit_runtime, job_id)
        resolve = Rebinding("93.184.216.34", "127.0.0.1")  # public when checked, then not
        Deliverer(
            unit_runtime.sessions, strict, render=callback_body, resolve=resolve
        ).deliver_due()
    assert receiver.received == [] and resolve.calls == 2
    refused = row(unit_runtime, job_id)
    assert refused.last_error is not None and "refused" in refused.last_error
    assert "loopback" in refused.last_error


def test_the_connection_goes_to_the_checked_address_with_the_original_host(unit_runtime):
    allowed = CallbackConfig(
        signing_secret=SecretStr(MASTER),
        url_policy=UrlPolicy(allowed_networks=parse_networks("127.0.0.0/8")),
    )
    with CallbackReceiver() as receiver:
        port = receiver.server.server_port
        job_id = add_job(unit_runtime, f"http://receiver.example.test:{port}/hook")
        end(unit_runtime, job_id)

        def resolve(host: str, port: int) -> list[str]:  # no DNS: only our answer counts
            assert host == "receiver.example.test"
            return ["127.0.0.1"]

        deliverer = Deliverer(unit_runtime.sessions, allowed, render=callback_body, resolve=resolve)
        assert deliverer.deliver_due() == 1
    [got] = receiver.received
    assert got.headers["Host"] == f"receiver.example.test:{port}"


def test_a_body_that_cannot_be_built_is_a_failed_attempt_not_a_stuck_claim(unit_runtime, config):
    def broken(session, row):
        raise RuntimeError("render failed")

    job_id = add_job(unit_runtime, "http://127.0.0.1:9/unused")
    end(unit_runtime, job_id)
    assert Deliverer(unit_runtime.sessions, config, render=broken).deliver_due() == 0
    failed = row(unit_runtime, job_id)
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert failed.last_error == "could not build the body"
    assert failed.next_attempt_at < failed.last_attempt_at + timedelta(seconds=1)  # backoff


def test_the_batch_statuses_that_fire_a_callback_are_the_ended_ones():
    from jobs.batches import LIVE, BatchStatus

    ended = set(BatchStatus) - set(LIVE) - {BatchStatus.FINALIZING}
    assert set(callbacks.BATCH_ENDED) == {s.value for s in ended}
