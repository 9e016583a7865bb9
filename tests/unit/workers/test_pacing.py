"""The pacing semaphore on Redis (fakeredis runs the Lua through lupa)."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest

from storage import keys
from workers.pacing import PaceLimit, Pacer, Slot, wait_seconds


@pytest.fixture()
def redis():
    return fakeredis.FakeRedis()


def pacer(redis, in_flight=0, per_second=0, lease=30.0) -> Pacer:
    return Pacer(redis, {"yandexgpt": PaceLimit("folder-1", in_flight, per_second)}, lease)


def test_an_unpaced_provider_always_gets_a_slot_without_redis():
    unpaced = Pacer(None, {"gigachat": PaceLimit("key")})
    slots = [unpaced.acquire("gigachat") for _ in range(100)]
    assert all(isinstance(s, Slot) for s in slots)
    for slot in slots:
        slot.release()


def test_the_in_flight_cap_is_respected_under_threads(redis):
    p = pacer(redis, in_flight=3)
    lock, now, peak, denied = threading.Lock(), [0], [0], [0]

    def worker():
        for _ in range(20):
            slot = p.acquire("yandexgpt")
            if slot is None:
                with lock:
                    denied[0] += 1
                time.sleep(0.001)
                continue
            with slot:
                with lock:
                    now[0] += 1
                    peak[0] = max(peak[0], now[0])
                time.sleep(0.002)
                with lock:
                    now[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p.close()
    assert peak[0] == 3 and denied[0] > 0
    assert redis.zcard(keys.pacing_holders("yandexgpt", "folder-1")) == 0


def test_an_expired_lease_is_reclaimed(redis):
    killed = pacer(redis, in_flight=1, lease=0.1)
    killed.close()  # a worker killed while holding the slot: no renewals, no release
    held = killed.acquire("yandexgpt")
    assert held is not None
    p = pacer(redis, in_flight=1, lease=0.1)
    assert p.acquire("yandexgpt") is None
    time.sleep(0.15)
    second = p.acquire("yandexgpt")
    assert second is not None
    held.release()  # the late release of a reclaimed lease frees nothing of the new holder's
    assert p.acquire("yandexgpt") is None
    second.release()
    p.close()


def test_release_is_idempotent(redis):
    p = pacer(redis, in_flight=2)
    first, second = p.acquire("yandexgpt"), p.acquire("yandexgpt")
    assert first is not None and second is not None
    first.release()
    first.release()
    with first:
        pass
    assert redis.zcard(keys.pacing_holders("yandexgpt", "folder-1")) == 1
    second.release()
    p.close()


def test_a_renewed_lease_outlives_its_first_term(redis):
    p = pacer(redis, in_flight=1, lease=0.2)
    slot = p.acquire("yandexgpt")
    assert slot is not None
    for _ in range(3):
        time.sleep(0.1)
        assert p.renew_held() == 1
    assert p.acquire("yandexgpt") is None  # 0.3 s later the slot is still held
    slot.release()
    assert p.renew_held() == 0
    p.close()


def test_the_rate_cap_counts_call_starts_in_the_last_second(redis):
    p = pacer(redis, per_second=2)
    starts = [p.acquire("yandexgpt") for _ in range(3)]
    assert starts[0] is not None and starts[1] is not None and starts[2] is None
    for slot in starts[:2]:
        assert slot is not None
        slot.release()  # releasing does not give back a call already started this second
    assert p.acquire("yandexgpt") is None
    time.sleep(1.05)
    assert p.acquire("yandexgpt") is not None
    p.close()


def test_credentials_are_paced_apart_and_never_named_in_keys(redis):
    p = Pacer(redis, {"yandexgpt": PaceLimit("a"), "gigachat": PaceLimit("secret-key", 1)})
    assert p.acquire("gigachat") is not None
    assert p.acquire("gigachat") is None
    assert p.acquire("yandexgpt") is not None  # no cap set: not paced at all
    assert not [k for k in redis.keys("*") if b"secret-key" in k]
    p.close()


def test_redis_down_means_unpaced_calls():
    server = fakeredis.FakeServer()
    server.connected = False
    p = pacer(fakeredis.FakeRedis(server=server), in_flight=1)
    assert p.acquire("yandexgpt") is not None
    assert p.acquire("yandexgpt") is not None


def test_the_wait_is_short_and_jittered():
    waits = {round(wait_seconds(), 3) for _ in range(50)}
    assert len(waits) > 10 and all(0.1 <= w <= 0.5 for w in waits)
