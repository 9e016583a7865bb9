"""`llmgw up`'s supervisor: a dead child is started again after a backoff; only a crash loop
stops the stack. Real (tiny) processes, no mocks of the supervisor."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmgw.stack import RestartPolicy, Stack, supervise


def test_backoff_doubles_within_the_window_and_the_fifth_crash_is_a_loop():
    policy = RestartPolicy(max_crashes=5, window=60, first_delay=0.5, max_delay=4)
    delays = [policy.crashed("worker", now) for now in (0, 1, 2, 3)]
    assert delays == [0.5, 1, 2, 4]
    assert policy.crashed("beat", 4) == 0.5  # each child counts its own crashes
    assert policy.crashed("worker", 5) is None


def test_crashes_older_than_the_window_are_forgotten():
    policy = RestartPolicy(max_crashes=3, window=10, first_delay=1)
    assert [policy.crashed("api", t) for t in (0, 5)] == [1, 2]
    assert policy.crashed("api", 20) == 1  # both earlier crashes are out of the window
    assert policy.crashed("api", 21) == 2


def python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


@pytest.fixture()
def stack(tmp_path):
    stack = Stack(host="127.0.0.1", api_port=0, flower_port=0, var_dir=tmp_path)
    yield stack
    stack.stop()


def test_a_crashing_child_is_restarted_until_a_crash_loop_stops_the_stack(stack, capsys):
    starts = []

    def crasher() -> subprocess.Popen:
        starts.append(1)
        return python("raise SystemExit(3)")

    sleeper = stack.adopt("steady", lambda: python("import time; time.sleep(60)"))
    stack.adopt("crasher", crasher)
    policy = RestartPolicy(max_crashes=4, window=60, first_delay=0.01, max_delay=0.05)
    assert supervise(stack, policy, poll=0.01) == 1
    assert len(starts) == 4  # the first start and three restarts; the fourth crash is a loop
    assert stack.child("steady").proc is sleeper and sleeper.poll() is None
    err = capsys.readouterr().err
    assert err.count("crasher exited with code 3; restarting it in") == 3
    assert err.count("crasher restarted (pid") == 3
    assert "its 4th crash within 60 s: a crash loop; stopping the stack" in err


def test_a_child_that_cannot_start_again_counts_as_crashing(stack, capsys):
    attempts = []

    def flaky() -> subprocess.Popen:
        attempts.append(1)
        if len(attempts) > 1:
            raise RuntimeError("port taken")
        return python("raise SystemExit(1)")

    stack.adopt("emulator", flaky)
    policy = RestartPolicy(max_crashes=3, window=60, first_delay=0.01)
    assert supervise(stack, policy, poll=0.01) == 1
    assert "emulator did not start again: port taken" in capsys.readouterr().err
