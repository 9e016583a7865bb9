"""`llmgw check` against the emulators: the credential rows, one row per catalogue channel,
and exit code 1 when a credential or a version fails."""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner
from pydantic import SecretStr

from llmgw.cli import main
from llmgw.container import Container
from routing.snapshot import load_catalogue

pytestmark = pytest.mark.integration


def live_channels(runtime) -> set[tuple[str, str, str]]:
    with runtime.sessions() as session:
        catalogue = load_catalogue(session)
    return {
        (m.provider, f"{m.name}:{v.channel}", v.upstream_id)
        for m in catalogue.models.values()
        for v in m.versions
        if v.status != "retired"
    }


def run_check(runtime, *args: str):
    return CliRunner().invoke(main, ["check", *args], obj=runtime)


def test_every_version_answers(runtime):
    result = run_check(runtime, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert all(row["ok"] for row in rows), rows
    checked = {(r["provider"], r["check"], r["upstream"]) for r in rows if r["upstream"] != "-"}
    assert checked == live_channels(runtime)
    auth_rows = [r for r in rows if r["check"] == "auth + models list"]
    assert sorted(r["provider"] for r in auth_rows) == ["gigachat", "yandexgpt"]


def test_table_and_provider_filter(runtime):
    result = run_check(runtime, "--provider", "gigachat")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["PROVIDER", "CHECK", "UPSTREAM", "RESULT", "DETAIL"]
    body = lines[1:]
    expected = {c for c in live_channels(runtime) if c[0] == "gigachat"}
    assert len(body) == len(expected) + 1  # + the credential row
    assert all(line.startswith("gigachat") and "  ok  " in line for line in body)


def test_a_failing_version_fails_the_check(runtime, emulators):
    rule = {"kind": "http_500", "model": "yandexgpt-lite", "branch": "rc"}
    added = requests.post(f"{emulators['yandexgpt']}/_emulator/faults", json=rule, timeout=5)
    assert added.status_code == 201, added.text
    try:
        result = run_check(runtime, "--provider", "yandexgpt", "--json")
    finally:
        requests.delete(f"{emulators['yandexgpt']}/_emulator/faults", timeout=5)
    assert result.exit_code == 1, result.output
    failed = [row for row in json.loads(result.stdout) if not row["ok"]]
    assert [row["check"] for row in failed] == ["yandexgpt-lite:rc"]
    assert failed[0]["detail"].startswith("upstream_5xx")


def test_wrong_credentials_fail_the_check(settings):
    bad_key = SecretStr("bm8tc3VjaDprZXk=")  # base64 of "no-such:key"
    wrong = Container(settings.model_copy(update={"gigachat_credentials": bad_key}))
    result = CliRunner().invoke(main, ["check", "--provider", "gigachat", "--json"], obj=wrong)
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert rows and not any(row["ok"] for row in rows)
    assert rows[0]["check"] == "auth + models list"
    assert rows[0]["detail"].startswith("auth")
