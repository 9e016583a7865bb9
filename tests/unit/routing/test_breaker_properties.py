"""The Lua breaker against a plain-Python statement of its semantics, on random histories."""

from __future__ import annotations

from dataclasses import dataclass

import fakeredis
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.breaker import CircuitBreaker

WINDOW, MIN_CALLS, RATE, COOLDOWN, PROBE = 60.0, 4, 0.5, 30.0, 10.0
KEY = "p:m:c"


@dataclass
class Oracle:
    """The documented semantics (routing/breaker.py docstring), written the obvious way."""

    state: str = "closed"
    open_until: float = 0.0
    probe_until: float = 0.0
    win_start: float = 0.0
    calls: int = 0
    fails: int = 0

    def allow(self, now: float) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open" and now < self.open_until:
            return False
        if self.state == "half_open" and now < self.probe_until:
            return False
        self.state, self.probe_until = "half_open", now + PROBE
        return True

    def record(self, now: float, ok: bool) -> str:
        if self.state == "half_open":
            if ok:
                self.__init__()  # closed, fresh window
                return "closed"
            self.state, self.open_until = "open", max(self.open_until, now + COOLDOWN)
            return "open"
        if now - self.win_start >= WINDOW:
            self.win_start, self.calls, self.fails = now, 0, 0
        self.calls += 1
        self.fails += 0 if ok else 1
        tripped = self.calls >= MIN_CALLS and self.fails >= RATE * self.calls
        if not ok and (self.state == "open" or tripped):
            self.state, self.open_until = "open", max(self.open_until, now + COOLDOWN)
        return self.state


steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.sampled_from([0.5, 5.0, 10.0, 29.9, 30.0, 61.0])),
        st.tuples(st.just("allow"), st.none()),
        st.tuples(st.just("success"), st.none()),
        st.tuples(st.just("failure"), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_lua_breaker_matches_the_documented_semantics(history):
    now = [1_795_000_000.0]  # a real epoch: the Lua side stores it as a string
    breaker = CircuitBreaker(
        fakeredis.FakeRedis(),
        window_seconds=WINDOW,
        min_calls=MIN_CALLS,
        failure_rate=RATE,
        cooldown_seconds=COOLDOWN,
        probe_timeout_seconds=PROBE,
        clock=lambda: now[0],
    )
    oracle = Oracle()
    for action, value in history:
        if action == "advance":
            now[0] += value
        elif action == "allow":
            assert breaker.allow(KEY) == oracle.allow(now[0])
        else:
            ok = action == "success"
            recorded = breaker.record_success(KEY) if ok else breaker.record_failure(KEY)
            assert recorded == oracle.record(now[0], ok)
        state = breaker.state(KEY)
        assert state.state == oracle.state
        if oracle.state == "open":
            assert state.open_until == oracle.open_until
        if oracle.state == "closed":
            assert (state.calls, state.fails) == (oracle.calls, oracle.fails)
        assert breaker.is_open(KEY) == (not Oracle(**vars(oracle)).allow(now[0]))
