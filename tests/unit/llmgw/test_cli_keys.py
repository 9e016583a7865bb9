"""`llmgw keys create|update|show` with scopes, expiry and limits; `llmgw usage`."""

from __future__ import annotations

import re

from click.testing import CliRunner

from llmgw.cli import main


def test_keys_with_limits_and_usage(unit_settings, monkeypatch):
    monkeypatch.setenv("LLMGW_DATABASE_URL", unit_settings.database_url)
    runner = CliRunner()
    created = runner.invoke(
        main,
        ["keys", "create", "svc", "--allow", "yandexgpt-lite", "--limit", '{"concurrent_jobs": 2}'],
    )
    assert created.exit_code == 0, created.output
    key_id = re.search(r"^id\s+(\w+)", created.output, re.M).group(1)
    assert 'limit   {"concurrent_jobs": 2}' in created.output
    updated = runner.invoke(
        main, ["keys", "update", key_id, "--all-models", "--expires", "2027-01-01T00:00:00"]
    )
    assert updated.exit_code == 0, updated.output
    shown = runner.invoke(main, ["keys", "show", key_id]).output
    assert "models  all" in shown and "expires 2027-01-01 00:00:00" in shown
    bad = runner.invoke(main, ["keys", "update", key_id, "--limit", '{"rpm": 1}'])
    assert bad.exit_code == 2
    table = runner.invoke(main, ["usage"])
    assert table.exit_code == 0 and table.output.startswith("key ")
