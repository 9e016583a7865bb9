"""py-spy attached to a benchmark's processes: `Profiler.start(name, pid)` records while the
benchmark runs; `stop()` returns each process's top functions (inclusive and own share of the
busy samples: py-spy leaves idle threads out), the "top entries" of its flame graph. A no-op
without py-spy (the `bench` extra).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

TOP = 15


class Profiler:
    def __init__(self, directory: Path | None) -> None:
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        self.directory, self.spy = directory, spy
        self.runs: dict[str, tuple[subprocess.Popen, Path]] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, pid: int, *, subprocesses: bool = False, idle: bool = False) -> None:
        if self.directory is None or self.spy is None:
            return
        out = self.directory / f"{name}.folded"
        args = [self.spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
        args += ["--rate", "200", "--nonblocking", *(["--subprocesses"] if subprocesses else [])]
        args += ["--idle"] if idle else []
        log = (self.directory / f"{name}.py-spy.log").open("w")
        self.runs[name] = (subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT), out)

    def stop(self) -> dict[str, Any]:
        tops = {}
        for name, (proc, out) in self.runs.items():
            proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
            proc.wait(timeout=60)
            tops[name] = top_entries(out) if out.exists() else "no samples"
        return tops


def top_entries(folded: Path) -> dict[str, Any]:
    """From collapsed stacks (`frame;frame;... count`): functions by inclusive and own share."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [short(f) for f in stack.split(";")]
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    share = lambda c: [[f, round(100 * n / total, 1)] for f, n in c.most_common(TOP)]  # noqa: E731
    return {"busy_samples": total, "inclusive_pct": share(inclusive), "own_pct": share(own)}


def short(frame: str) -> str:
    """`func (path/to/module.py:line)` → `func (module.py)`: lines differ, functions do not."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    return f"{name} ({'/'.join(parts[-2:])})" if parts else name
