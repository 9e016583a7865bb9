"""The `llmgw` CLI as a new user meets it: its version, and configuration errors as one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from llmgw import __version__
from llmgw.cli import main


@pytest.fixture()
def runner(monkeypatch, tmp_path):
    for name in ("LLMGW_REDIS_URL", "LLMGW_DATABASE_URL", "LLMGW_MAX_WAIT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env, no var/ of a running stack
    return CliRunner()


def assert_one_line_exit_2(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0]


def test_version(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"llmgw, version {__version__}\n"


@pytest.mark.parametrize("command", [["models", "list"], ["db", "current"], ["keys", "list"]])
def test_a_malformed_setting_is_one_line_and_exit_2(runner, monkeypatch, command):
    monkeypatch.setenv("LLMGW_MAX_WAIT_SECONDS", "soon")
    result = runner.invoke(main, command)
    assert_one_line_exit_2(result, "configuration error: LLMGW_MAX_WAIT_SECONDS:")


def test_a_missing_redis_is_one_line_and_exit_2(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMGW_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    result = runner.invoke(main, ["models", "circuits"])
    assert_one_line_exit_2(result, "LLMGW_REDIS_URL is not set")


def test_an_unreachable_database_is_one_line_and_exit_2(runner, monkeypatch):
    monkeypatch.setenv("LLMGW_DATABASE_URL", "postgresql+psycopg://u:secret@127.0.0.1:1/db")
    result = runner.invoke(main, ["keys", "list"])
    assert_one_line_exit_2(result, "database postgresql+psycopg://u:***@127.0.0.1:1/db")
    assert "secret" not in result.output


def test_an_unmigrated_database_says_what_to_run(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMGW_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(main, ["models", "list"])
    assert_one_line_exit_2(result, "no such table", "llmgw db upgrade")
