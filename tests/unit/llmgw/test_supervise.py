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


STUBBORN = """
import os, pathlib, signal, sys, time
me, other = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def leave(*_):
    me.write_text("asked")
    deadline = time.monotonic() + 5
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    me.write_text("saw the other asked" if other.exists() else "alone")
    sys.exit(0)
signal.signal(signal.SIGTERM, leave)
pathlib.Path(sys.argv[3]).write_text("ready")
while True:
    time.sleep(0.1)
"""


def test_stack_stop_asks_every_service_to_leave_before_waiting_for_any(tmp_path):
    """`llmgw up`'s Ctrl-C: the children are stopped together (one deadline for all), not
    one after another, each leaving only once it sees the other was asked too."""
    from llmgw.processes import wait_until

    a, b = tmp_path / "a", tmp_path / "b"
    stack = Stack(host="127.0.0.1", api_port=0, flower_port=0, var_dir=tmp_path)
    for name, me, other in (("worker", a, b), ("api", b, a)):
        ready = tmp_path / f"{name}.ready"
        cmd = [sys.executable, "-c", STUBBORN, str(me), str(other), str(ready)]
        stack.adopt(name, lambda cmd=cmd: subprocess.Popen(cmd, start_new_session=True))
        wait_until(ready.exists, timeout=30, what=name)
    procs = [child.proc for child in stack.children]
    stack.stop()
    assert [proc.returncode for proc in procs] == [0, 0]  # both left on SIGTERM, none killed
    assert a.read_text() == b.read_text() == "saw the other asked"
