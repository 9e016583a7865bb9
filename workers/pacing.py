"""Provider pacing: a Redis semaphore per provider credential, shared by every worker.

Decisions:
- A worker takes a slot before each provider call and gives it back after; with no slot free
  the job goes back to its queue with a short jittered countdown (`workers.service`), so a
  burst waits in the queue instead of being answered 429 upstream. Waiting is not an attempt:
  no attempt row is written, and the retry budget counts attempt rows.
- Two caps per credential, each optional (0 = none): calls in flight at once (YandexGPT counts
  concurrent generations per cloud, GigaChat per key by plan) and calls started per second.
- Slots are leases, not counters: a sorted set of holder tokens scored by lease expiry, on
  the Redis clock (`TIME`, so workers' clocks do not matter). The acquire script prunes
  expired holders first, so a killed worker's slots come back when their lease runs out. The
  lease is the provider's connect + read timeout (one read never outlasts it); a longer call
  (a stream, an async operation being polled) keeps its slot because a per-process renewer
  thread pushes every held lease forward every third of a lease.
- The rate cap is a sliding one-second window (a sorted set of call starts) checked in the
  same script, so both caps are taken or neither.
- Release is one `ZREM` (atomic on its own, no script needed) and idempotent: a slot
  released twice, or after its lease was reclaimed, removes nothing of anyone else's.
- Redis unreachable: the call goes ahead unpaced (fail open, as the breaker does); pacing
  protects the quota, it must not stop the service.
- Not `limits` or `pyrate-limiter`: they pace rates, not leased concurrency, and our two
  scripts are short enough to read whole.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitoring.metrics import PACING_IN_FLIGHT, PACING_WAITS
from storage import keys

log = logging.getLogger(__name__)

# KEYS[1] holders (token -> lease expiry, ms), KEYS[2] call starts (token -> start, ms).
# ARGV token, max_in_flight (0: none), lease_ms, max_calls_per_second (0: none).
# Returns 1: slot taken; 0: every in-flight slot is held; -1: this second's calls are used.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap, lease, rate = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
end
if rate > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 1000)
  if redis.call('ZCARD', KEYS[2]) >= rate then return -1 end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], 1000)
end
if cap > 0 then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease)
end
return 1
"""

# KEYS[1] holders; ARGV lease_ms, then the tokens to renew (only those still held).
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i])
end
if renewed > 0 then redis.call('PEXPIRE', KEYS[1], lease) end
return renewed
"""

DENIED = {0: "in_flight", -1: "rate"}


@dataclass(frozen=True)
class PaceLimit:
    """The caps of one provider credential; `credential` is digested in the key names."""

    credential: str
    max_in_flight: int = 0
    max_calls_per_second: int = 0

    @property
    def capped(self) -> bool:
        return self.max_in_flight > 0 or self.max_calls_per_second > 0


@dataclass
class Slot:
    """One taken slot; `release` (or leaving the `with`) gives it back, once."""

    provider: str
    token: str = ""
    holders: str = ""
    pacer: Pacer | None = None
    released: bool = field(default=False, init=False)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.pacer is not None:
            self.pacer.give_back(self)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Pacer:
    """Takes and gives back slots for the providers in `limits` (others are not paced)."""

    def __init__(
        self, redis: Any, limits: Mapping[str, PaceLimit], lease_seconds: float = 65.0
    ) -> None:
        self.redis = redis
        self.limits = {name: limit for name, limit in limits.items() if limit.capped}
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self._held: dict[str, Slot] = {}
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()
        if self.limits:
            self._acquire = redis.register_script(ACQUIRE)
            self._renew = redis.register_script(RENEW)

    def acquire(self, provider: str) -> Slot | None:
        """A slot for one call to `provider`, or None when its credential has none free."""
        limit = self.limits.get(provider)
        if limit is None:
            return Slot(provider)
        token = uuid.uuid4().hex
        holders = keys.pacing_holders(provider, limit.credential)
        calls = keys.pacing_calls(provider, limit.credential)
        args = [token, limit.max_in_flight, self.lease_ms, limit.max_calls_per_second]
        try:
            taken = int(self._acquire(keys=[holders, calls], args=args))
        except Exception:
            log.warning("pacing for %s unreadable; calling unpaced", provider, exc_info=True)
            return Slot(provider)
        if taken != 1:
            PACING_WAITS.labels(provider, DENIED.get(taken, "in_flight")).inc()
            return None
        return self._hold(Slot(provider, token, holders, self))

    def _hold(self, slot: Slot) -> Slot:
        PACING_IN_FLIGHT.labels(slot.provider).inc()
        with self._lock:
            self._held[slot.token] = slot
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew_forever, name="llmgw-pacing-renewer", daemon=True
                )
                self._renewer.start()
        return slot

    def give_back(self, slot: Slot) -> None:
        PACING_IN_FLIGHT.labels(slot.provider).dec()
        with self._lock:
            self._held.pop(slot.token, None)
        try:
            self.redis.zrem(slot.holders, slot.token)
        except Exception:
            log.warning("could not release a %s slot; its lease frees it", slot.provider)

    def renew_held(self) -> int:
        """Push the lease of every slot this process holds forward; the count renewed."""
        with self._lock:
            by_key: dict[str, list[str]] = {}
            for slot in self._held.values():
                by_key.setdefault(slot.holders, []).append(slot.token)
        renewed = 0
        for holders, tokens in by_key.items():
            renewed += int(self._renew(keys=[holders], args=[self.lease_ms, *tokens]))
        return renewed

    def _renew_forever(self) -> None:
        while not self._stop.wait(self.lease_ms / 3000):
            try:
                self.renew_held()
            except Exception:
                log.warning("could not renew pacing leases", exc_info=True)

    def close(self) -> None:
        self._stop.set()


# A job without a slot is back in the queue this soon: about a short call's length, jittered
# so the waiting jobs do not all come back in the same instant.
WAIT_SECONDS = (0.1, 0.5)


def wait_seconds() -> float:
    return random.uniform(*WAIT_SECONDS)
