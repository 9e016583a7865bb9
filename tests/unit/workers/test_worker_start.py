"""A worker builds its context before its consumer starts, and hands the GIL on sooner."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from workers.celery_app import GIL_SWITCH_INTERVAL, _worker_starting


def test_the_context_is_built_and_the_gil_interval_shortened_at_worker_start():
    built: list[int] = []
    app = SimpleNamespace(llmgw_context=lambda: built.append(1))
    before = sys.getswitchinterval()
    try:
        _worker_starting(sender=SimpleNamespace(app=app))
        assert built == [1]
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL)
    finally:
        sys.setswitchinterval(before)
