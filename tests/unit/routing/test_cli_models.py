"""`llmgw models …` against the unit database and fakeredis (the container is passed as obj)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from llmgw.cli import main
from routing.cache import VERSION_KEY
from tests.unit.routing.conftest import add_job


@pytest.fixture()
def cli(unit_runtime):
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(main, ["models", *args], obj=unit_runtime, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return run


def test_list_shows_channels_versions_and_sunsets(cli):
    lines = cli("list").splitlines()
    assert "yandexgpt:rc\tyandexgpt\tyandexgpt/rc\t22.05.2025\tactive" in lines
    assert (
        "yandexgpt:deprecated\tyandexgpt\tyandexgpt/deprecated\t23.10.2024\tdeprecated"
        "\tsunset 2027-03-01"
    ) in lines


def test_promote_prints_the_change_audits_the_cli_user_and_bumps_the_cache(cli, unit_runtime):
    out = cli("promote", "GigaChat-Pro", "--reason", "rc is better")
    assert "promote GigaChat-Pro by cli:" in out and "(rc is better)" in out
    assert "latest: GigaChat-Pro active → GigaChat-Pro-preview active" in out
    assert "deprecated: (none) → GigaChat-Pro deprecated sunset" in out
    assert unit_runtime.redis.get(VERSION_KEY) == b"1"
    assert "\tpromote\tcli:" in cli("events", "GigaChat-Pro")


def test_rollback_after_promote(cli):
    cli("promote", "yandexgpt")
    out = cli("rollback", "yandexgpt")
    assert "latest: yandexgpt/rc active → yandexgpt/latest active" in out
    assert "yandexgpt:latest\tyandexgpt\tyandexgpt/latest\t09.02.2025\tactive" in cli("list")


def test_errors_name_the_choices_and_exit_non_zero(cli):
    out = cli("promote", "gpt-4", ok=False)
    assert "Model 'gpt-4' does not exist." in out and "GigaChat-Pro" in out
    assert "no version '1.0'" in cli("pin", "yandexgpt", "latest", "1.0", ok=False)


def test_deprecate_retire_pin_policy(cli):
    assert "sunset 2027-01-15" in cli("deprecate", "yandexgpt-32k", "--sunset", "2027-01-15")
    assert "rc: yandexgpt-lite/rc active → yandexgpt-lite/rc retired" in cli(
        "retire", "yandexgpt-lite:rc"
    )
    cli("pin", "GigaChat", "rc", "2.2.0", "--upstream", "GigaChat-preview")
    assert "GigaChat:rc\tgigachat\tGigaChat-preview\t2.2.0\tactive" in cli("list")
    cli("policy", "GigaChat", "--on-sunset", "redirect", "--equivalent", "yandexgpt")
    shown = json.loads(cli("show", "gigachat-lite"))
    assert (shown["sunset_policy"], shown["equivalents"]) == ("redirect", ["yandexgpt"])
    assert [e["action"] for e in shown["events"]] == ["policy", "pin"]


def test_resolve_dry_run(cli):
    out = cli("resolve", "yandexgpt-pro:rc", "--cross-provider").splitlines()
    assert out[0] == "try  yandexgpt:rc\tyandexgpt/rc\tyandexgpt.rc\trequested"
    assert out[-2] == "try  GigaChat-Pro:latest\tGigaChat-Pro\tgigachat.latest\tcross_provider"
    assert out[-1] == (
        "try  GigaChat-2-Pro:latest\tGigaChat-2-Pro\tgigachat.latest\tcross_provider"
    )


def test_resolve_dry_run_with_features(cli):
    out = cli("resolve", "yandexgpt:rc", "--feature", "tools").splitlines()
    assert [line.split("\t")[0] for line in out] == [
        "try  yandexgpt:rc",
        "try  yandexgpt:latest",
        "skip yandexgpt:deprecated",
    ]
    assert "unsupported: yandexgpt:deprecated lacks tools" in out[-1]


def test_compare_table(cli, unit_runtime):
    add_job(unit_runtime, channel="rc", status="failed")
    add_job(unit_runtime, channel="latest")
    lines = cli("compare", "yandexgpt", "rc", "latest").splitlines()
    assert lines[0].split() == ["yandexgpt:rc", "yandexgpt:latest"]
    assert lines[3].split() == ["error", "rate", "1.0", "0.0"]
    report = json.loads(cli("compare", "yandexgpt", "--json"))
    assert [v["jobs"] for v in report["versions"]] == [1, 1]


def test_key_policy_from_the_cli(cli, unit_runtime):
    out = cli("key-policy", "user1", "--cross-provider", "deny")
    assert "key_policy key:user1 by cli:" in out
    assert "{'cross_provider': None} → {'cross_provider': False}" in out
    assert unit_runtime.redis.get(VERSION_KEY) == b"1"


def test_circuits_list_and_reset(cli, unit_runtime):
    from routing.breaker import CircuitBreaker

    breaker = CircuitBreaker(unit_runtime.redis, min_calls=1)
    breaker.record_failure("yandexgpt:yandexgpt:rc")
    lines = cli("circuits").splitlines()
    assert "yandexgpt:yandexgpt:rc\topen\t1/1 failed" in lines
    assert "gigachat:GigaChat:latest\tclosed\t0/0 failed" in lines
    assert cli("circuits", "--reset", "yandexgpt:yandexgpt:rc") == "yandexgpt:yandexgpt:rc: reset\n"
    assert breaker.allow("yandexgpt:yandexgpt:rc")


def test_seed_bumps_the_catalogue_version(cli, unit_runtime):
    assert "catalogue seeded: 0 new rows" in cli("seed")
    assert unit_runtime.redis.get(VERSION_KEY) == b"1"


def test_seed_without_redis_says_caches_are_stale(unit_settings, unit_runtime):
    from llmgw.container import Container as Runtime

    runtime = Runtime(unit_settings.model_copy(update={"redis_url": None}))
    result = CliRunner().invoke(main, ["models", "seed"], obj=runtime)
    assert result.exit_code == 0, result.output
    assert "warning: no Redis configured; running gateways see the change" in result.stderr


def test_seed_with_redis_down_says_caches_are_stale(unit_settings):
    from llmgw.container import Container as Runtime

    down = unit_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    result = CliRunner().invoke(main, ["models", "seed"], obj=Runtime(down))
    assert result.exit_code == 0, result.output
    assert "warning: Redis not reachable; running gateways see" in result.stderr
