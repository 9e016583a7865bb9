"""docs/versioning.md's examples are run: id table, CLI sessions, HTTP calls, Python snippet."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from llmgw.cli import main
from routing.breaker import CircuitBreaker
from routing.service import resolve

DOC = Path(__file__).parents[3] / "docs" / "versioning.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{re.escape(kind)}\n(.*?)^```", DOC.read_text("utf-8"), re.M | re.S)


def pattern(expected: str) -> re.Pattern[str]:
    """A doc output line: whitespace-insensitive, `…` matches anything."""
    words = [".*".join(re.escape(p) for p in w.split("…")) for w in expected.split()]
    return re.compile(r"\s*" + r"\s+".join(words) + r"\s*")


def test_the_doc_has_every_kind_of_example():
    assert len(blocks("text id-examples")) == 1
    assert len(blocks("console")) >= 3
    assert len(blocks("http-replay")) == 1
    assert len(blocks("python")) == 1


def test_id_examples_resolve_as_documented(unit_runtime):
    rows = [line.split() for line in blocks("text id-examples")[0].splitlines() if line]
    assert len(rows) >= 8
    with unit_runtime.sessions() as session:
        for model_id, arrow, target, upstream, queue in rows:
            route = resolve(session, model_id)
            assert arrow == "→"
            assert (route.model_id, route.upstream_id, route.queue) == (target, upstream, queue)


def sessions() -> list[list[tuple[str, list[str]]]]:
    """Each console block: [(command, expected output lines), ...]."""
    parsed = []
    for block in blocks("console"):
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif line.strip():
                steps[-1][1].append(line)
        parsed.append(steps)
    return parsed


@pytest.mark.parametrize("steps", sessions(), ids=lambda s: s[0][0][:40])
def test_console_sessions_replay(unit_runtime, steps):
    runner = CliRunner()
    for command, expected in steps:
        args = shlex.split(command)
        assert args[0] == "llmgw"
        result = runner.invoke(main, args[1:], obj=unit_runtime, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        for want in expected:
            assert any(pattern(want).fullmatch(line) for line in lines), (want, result.output)


def test_http_examples_replay(unit_client, master_auth):
    lines = [line for line in blocks("http-replay")[0].splitlines() if line.strip()]
    for request_line, status_line in zip(lines[::2], lines[1::2], strict=True):
        method, path, *body = request_line.split(" ", 2)
        call = getattr(unit_client, method.lower())
        kwargs = {"json": json.loads(body[0])} if body else {}
        response = call(path, headers=master_auth, **kwargs)
        assert status_line == f"→ {response.status_code}", (request_line, response.get_json())


def test_python_snippet_runs(unit_runtime):
    namespace = {
        "runtime": unit_runtime,
        "job": SimpleNamespace(model_requested="yandexgpt:rc"),
        "breaker": CircuitBreaker(unit_runtime.redis),
    }
    exec(compile(blocks("python")[0], str(DOC), "exec"), namespace)  # noqa: S102 - our own doc
    assert namespace["plan"].primary.queue == "yandexgpt.rc"
    assert namespace["route"].channel == "deprecated"  # the loop walked the whole plan
