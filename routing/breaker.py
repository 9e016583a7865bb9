"""Circuit breakers per provider + model + channel, state shared by every process in Redis.

Why not a library: `pybreaker` (the kept Python one with Redis storage) trips on N
*consecutive* failures, not on a failure rate over a minimum number of calls in a window;
its Redis storage moves state with separate GET/SET calls, so two workers can both take the
half-open probe, and a failure during the cooldown does not extend it. `purgatory` and
`aiobreaker` are asyncio-only. Two short Lua scripts give every transition atomically in
one round trip, which is all we need.

Semantics (clock = the caller's `time.time`, seconds):
- closed: calls counted in a fixed window of `window_seconds`; a failure that brings the
  window to ≥ `min_calls` calls with a failure share ≥ `failure_rate` opens the circuit
  until now + `cooldown_seconds`.
- open: `allow` refuses until the deadline. Any failure recorded meanwhile (calls already in
  flight) moves the deadline to max(deadline, now + cooldown) — never earlier.
- half-open: the first `allow` after the deadline is the probe (exclusive for
  `probe_timeout_seconds`, then another caller may probe); its success closes the circuit
  with a fresh window, its failure opens it again.

Redis key: `storage.keys.circuit(circuit_id)`, `llmgw:cb:<provider>:<model>:<channel>` —
hash {state, open_until, probe_until, win_start, calls, fails}; TTL `ttl_seconds` (1 h),
refreshed on every write, so an idle circuit disappears (= closed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from storage import keys as redis_keys

# What a reader that takes no probe needs (`observed_state`): the metrics collector.
STATE_FIELDS = ("state", "open_until")

_ALLOW = """
local s = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'probe_until')
local state = s[1] or 'closed'
local now, probe, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if state == 'closed' then return 1 end
if state == 'open' and now < tonumber(s[2]) then return 0 end
if state == 'half_open' and now < tonumber(s[3] or '0') then return 0 end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + probe)
redis.call('EXPIRE', KEYS[1], ttl)
return 1
"""

_RECORD = """
local k = KEYS[1]
local now, ok, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local min_calls, rate, cooldown, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]),
  tonumber(ARGV[7])
local s = redis.call('HMGET', k, 'state', 'open_until', 'win_start', 'calls', 'fails')
local state = s[1] or 'closed'
local open_until = tonumber(s[2] or '0')
if state == 'half_open' then
  if ok == 1 then redis.call('DEL', k) return 'closed' end
  redis.call('HSET', k, 'state', 'open', 'open_until', math.max(open_until, now + cooldown))
  redis.call('EXPIRE', k, ttl)
  return 'open'
end
local win_start, calls, fails = tonumber(s[3] or '0'), tonumber(s[4] or '0'),
  tonumber(s[5] or '0')
if now - win_start >= window then win_start, calls, fails = now, 0, 0 end
calls = calls + 1
if ok == 0 then fails = fails + 1 end
if ok == 0 and (state == 'open' or (calls >= min_calls and fails >= rate * calls)) then
  state, open_until = 'open', math.max(open_until, now + cooldown)
end
redis.call('HSET', k, 'state', state, 'open_until', open_until, 'win_start', win_start,
  'calls', calls, 'fails', fails)
redis.call('EXPIRE', k, ttl)
return state
"""


@dataclass(frozen=True)
class CircuitsSeen:
    """What one read-only look at some circuits saw (`CircuitBreaker.look`): the ones that
    refuse a call now, and the closed ones (no state, or `closed`). A circuit in neither is
    open past its deadline or half-open: its next call is a probe that only `allow` may
    take."""

    open: frozenset[str] = frozenset()
    closed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BreakerState:
    state: str  # closed | open | half_open
    open_until: float | None
    calls: int
    fails: int


class CircuitBreaker:
    def __init__(
        self,
        client: redis.Redis,
        *,
        window_seconds: float = 60.0,
        min_calls: int = 10,
        failure_rate: float = 0.5,
        cooldown_seconds: float = 30.0,
        probe_timeout_seconds: float = 30.0,
        ttl_seconds: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.window, self.min_calls, self.failure_rate = window_seconds, min_calls, failure_rate
        self.cooldown, self.probe_timeout, self.ttl = (
            cooldown_seconds,
            probe_timeout_seconds,
            ttl_seconds,
        )
        self.clock = clock
        self._allow = client.register_script(_ALLOW)
        self._record = client.register_script(_RECORD)

    def allow(self, key: str) -> bool:
        """May a call go to this circuit now? In half-open, True for the one probe only."""
        return bool(
            self._allow(
                keys=[redis_keys.circuit(key)], args=[self.clock(), self.probe_timeout, self.ttl]
            )
        )

    def record_success(self, key: str) -> str:
        return self._record_outcome(key, ok=True)

    def record_failure(self, key: str) -> str:
        """Count a failed call (a retryable provider error); returns the circuit's state."""
        return self._record_outcome(key, ok=False)

    def _record_outcome(self, key: str, *, ok: bool) -> str:
        args = [self.clock(), int(ok), self.window, self.min_calls, self.failure_rate]
        state = self._record(keys=[redis_keys.circuit(key)], args=[*args, self.cooldown, self.ttl])
        return _text(state) or "closed"

    def state(self, key: str) -> BreakerState:
        raw = self.redis.hmget(redis_keys.circuit(key), "state", "open_until", "calls", "fails")
        state, open_until, calls, fails = (_text(v) for v in raw)
        return BreakerState(
            state=state or "closed",
            open_until=float(open_until) if open_until else None,
            calls=int(calls or 0),
            fails=int(fails or 0),
        )

    def look(self, keys: Iterable[str]) -> CircuitsSeen:
        """One read-only look at these circuits (takes no probe): which would refuse a call
        now, and which are closed, so that `allow` would let a call go without writing."""
        keys = list(keys)
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(redis_keys.circuit(key), "state", "open_until", "probe_until")
        now = self.clock()
        raws = list(zip(keys, pipe.execute(), strict=True))
        return CircuitsSeen(
            open=frozenset(k for k, raw in raws if _refuses(raw, now)),
            closed=frozenset(k for k, raw in raws if _text(raw[0]) in (None, "closed")),
        )

    def open_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these circuits would refuse a call now (read-only: takes no probe)."""
        return set(self.look(keys).open)

    def is_open(self, key: str) -> bool:
        return key in self.open_keys([key])

    def reset(self, key: str) -> bool:
        """Close a circuit by hand (an operator's override); True if it had state."""
        return bool(self.redis.delete(redis_keys.circuit(key)))


def observed_state(raw: list, now: float) -> str | None:
    """A circuit's state from its `STATE_FIELDS` as a scrape sees it: `open` past its
    deadline is `half_open` (the next call probes); None when the circuit has no state."""
    state, open_until = (_text(v) for v in raw[:2])
    if state is None:
        return None
    if state == "open" and now >= float(open_until or 0):
        return "half_open"
    return state if state in ("open", "half_open") else "closed"


def _refuses(raw: list, now: float) -> bool:
    state, open_until, probe_until = (_text(v) for v in raw)
    if state == "open":
        return now < float(open_until or 0)
    if state == "half_open":
        return now < float(probe_until or 0)
    return False


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
