"""The shared token cache: reuse, expiry, forced refresh, and one refresh under contention."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest
import redis

from providers.errors import AuthError, ProviderConnectionError
from providers.gigachat import GigaChatProvider, token_cache_key
from providers.http import FAILURE_HOLD_SECONDS, Token, TokenCache
from tests.unit.providers.conftest import GIGA, GIGA_AUTH, calls_to, giga_config
from tests.unit.providers.test_gigachat import REQUEST, chat

N_THREADS = 16


class Issuer:
    """A fetch function that counts calls and can be slow, like a real OAuth round trip."""

    def __init__(self, ttl: float = 1800.0, delay: float = 0.0) -> None:
        self.ttl, self.delay, self.count = ttl, delay, 0
        self._lock = threading.Lock()

    def __call__(self) -> Token:
        time.sleep(self.delay)
        with self._lock:
            self.count += 1
            return Token(f"tok-{self.count}", time.time() + self.ttl)


def run_in_threads(target, n=N_THREADS) -> list:
    barrier, results, errors = threading.Barrier(n), [None] * n, []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target()
        except Exception as exc:  # surfaced below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors, errors
    return results


def test_in_process_reuse_and_expiry():
    now = [1000.0]
    count = iter(range(1, 100))
    cache = TokenCache("k", lambda: Token(f"t{next(count)}", now[0] + 600), clock=lambda: now[0])
    assert cache.get() == cache.get() == "t1"
    now[0] += 539
    assert cache.get() == "t1"
    now[0] += 2  # inside the 60 s margin before expires_at
    assert cache.get() == "t2"


def test_short_lived_tokens_are_still_reused():
    issuer = Issuer(ttl=4.0)  # margin shrinks to a quarter of the lifetime
    cache = TokenCache("k", issuer)
    assert cache.get() == cache.get() == "tok-1"


def test_refresh_replaces_only_the_stale_token():
    issuer = Issuer()
    cache = TokenCache("k", issuer)
    assert cache.refresh(stale=cache.get()) == "tok-2"
    assert cache.refresh(stale="tok-1") == "tok-2"  # someone already replaced it
    assert issuer.count == 2


def test_redis_entry_expires_with_the_margin():
    client = fakeredis.FakeRedis()
    cache = TokenCache("llmgw:test:token", Issuer(ttl=1800), redis=client)
    assert cache.get() == "tok-1"
    assert 1739_000 <= client.pttl("llmgw:test:token") <= 1740_000
    assert not client.exists("llmgw:test:token:lock")


class DownRedis:
    """A Redis client whose server is gone (no socket needed to say so)."""

    def get(self, key):
        raise redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


def test_redis_failure_is_a_retryable_connection_error():
    cache = TokenCache("k", Issuer(), redis=DownRedis())
    with pytest.raises(ProviderConnectionError, match="Token cache"):
        cache.get()


@pytest.mark.parametrize("shared_redis", [False, True])
def test_concurrent_callers_cause_one_fetch(shared_redis):
    issuer = Issuer(delay=0.2)
    server = fakeredis.FakeServer()
    caches = [  # two "processes", each with its own client (or none) and its own mutex
        TokenCache("k", issuer, redis=fakeredis.FakeRedis(server=server) if shared_redis else None)
        for _ in range(2 if shared_redis else 1)
    ]
    counter = iter(range(10_000))
    results = run_in_threads(lambda: caches[next(counter) % len(caches)].get())
    assert issuer.count == 1
    assert set(results) == {"tok-1"}


def test_concurrent_forced_refresh_after_401_causes_one_fetch():
    issuer = Issuer(delay=0.1)
    cache = TokenCache("k", issuer, redis=fakeredis.FakeRedis())
    stale = cache.get()
    results = run_in_threads(lambda: cache.refresh(stale=stale))
    assert issuer.count == 2
    assert set(results) == {"tok-2"}


def test_gigachat_threads_and_processes_share_one_oauth_call(rsps):
    server = fakeredis.FakeServer()
    config = giga_config()
    workers = [GigaChatProvider(config, redis=fakeredis.FakeRedis(server=server)) for _ in range(3)]

    def slow_token(request):
        time.sleep(0.2)
        expires = int((time.time() + 1800) * 1000)
        return 200, {}, f'{{"access_token": "shared", "expires_at": {expires}}}'

    rsps.add_callback("POST", GIGA_AUTH, callback=slow_token)
    rsps.post(f"{GIGA}/chat/completions", json=chat())
    counter = iter(range(10_000))
    results = run_in_threads(lambda: workers[next(counter) % 3].complete(REQUEST))
    assert len(calls_to(rsps, GIGA_AUTH)) == 1
    assert all(r.content == "Здравствуйте!" for r in results)
    auths = {c.request.headers["Authorization"] for c in calls_to(rsps, f"{GIGA}/chat/completions")}
    assert auths == {"Bearer shared"}
    key = token_cache_key(config.credentials.get_secret_value())
    assert key.startswith("llmgw:gigachat:token:") and len(key.rsplit(":", 1)[1]) == 16
    assert fakeredis.FakeRedis(server=server).get(key) == b"shared"


def test_a_failed_fetch_is_shared_by_the_callers_waiting_behind_it():
    calls = []

    def failing() -> Token:
        calls.append(1)
        time.sleep(0.1)
        raise AuthError("credentials doesn't match db data", status=401)

    cache = TokenCache("k", failing, redis=fakeredis.FakeRedis())
    errors = []

    def call() -> None:
        try:
            cache.get()
        except AuthError as exc:
            errors.append(exc)

    run_in_threads(call)
    assert len(calls) == 1
    assert len(errors) == N_THREADS
    assert {e.status for e in errors} == {401}


def test_a_failure_is_forgotten_after_the_hold():
    now = [0.0]
    outcomes = iter([AuthError("no"), Token("tok", 10_000.0)])

    def fetch() -> Token:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    cache = TokenCache("k", fetch, clock=lambda: now[0])
    with pytest.raises(AuthError):
        cache.get()
    with pytest.raises(AuthError):
        cache.get()  # within the hold: not fetched again
    now[0] += FAILURE_HOLD_SECONDS
    assert cache.get() == "tok"
