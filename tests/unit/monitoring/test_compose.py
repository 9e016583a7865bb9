"""docker-compose.yml and the Dockerfile, checked without Docker (no engine on our machines):
every llmgw service runs a real `llmgw` command with options the CLI accepts, and sets only
variables something reads."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml
from flower.options import default_options as flower_options

from llmgw.cli import main
from llmgw.cli.services import graceful_timeout
from llmgw.settings import Settings
from llmgw.stack import EMULATOR_FOLDER, EMULATOR_GIGACHAT_KEY, EMULATOR_YANDEX_KEY

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LLMGW_SERVICES = sorted(name for name, svc in SERVICES.items() if svc.get("build"))
SETTINGS = {f"LLMGW_{name.upper()}" for name in Settings.model_fields}


def llmgw_commands(service: dict) -> list[list[str]]:
    """The `llmgw ...` argument lists a service runs (`sh -c "a && b"` is split)."""
    command = service["command"]
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def test_every_service_the_operators_need_is_there():
    assert set(SERVICES) >= {
        "redis",
        "api",
        "worker",
        "beat",
        "flower",
        "emulator-yandexgpt",
        "emulator-gigachat",
        "prometheus",
        "grafana",
        "migrate",
        "alertmanager",
        "alertmanager-webhook",
    }


@pytest.mark.parametrize("name", LLMGW_SERVICES)
def test_commands_are_llmgw_subcommands_with_accepted_options(name):
    for args in llmgw_commands(SERVICES[name]):
        assert args[0] == "llmgw", args
        command, rest = main, args[1:]
        while isinstance(command, click.Group):
            assert rest and rest[0] in command.commands, f"{name}: no subcommand in {args}"
            command, rest = command.commands[rest[0]], rest[1:]
        command.make_context(args[-1], list(rest))  # raises on an unknown option or argument


def test_migrate_upgrades_then_seeds():
    commands = llmgw_commands(SERVICES["migrate"])
    assert commands == [["llmgw", "db", "upgrade", "--no-backup"], ["llmgw", "models", "seed"]]


@pytest.mark.parametrize("name", LLMGW_SERVICES)
def test_environment_is_llmgw_settings_or_flower_options(name):
    for variable in SERVICES[name].get("environment") or {}:
        if variable.startswith("FLOWER_") and name == "flower":
            assert variable.removeprefix("FLOWER_").lower() in flower_options, variable
        else:
            assert variable in SETTINGS, f"{name}: {variable} is not a setting"


def test_emulator_credentials_match_what_the_services_are_given():
    env = SERVICES["api"]["environment"]
    assert f":-{EMULATOR_YANDEX_KEY}}}" in env["LLMGW_YANDEXGPT_API_KEY"]
    assert f":-{EMULATOR_FOLDER}}}" in env["LLMGW_YANDEXGPT_FOLDER_ID"]
    assert f":-{EMULATOR_GIGACHAT_KEY}}}" in env["LLMGW_GIGACHAT_CREDENTIALS"]
    assert EMULATOR_YANDEX_KEY in SERVICES["emulator-yandexgpt"]["command"]
    assert EMULATOR_GIGACHAT_KEY in SERVICES["emulator-gigachat"]["command"]


def test_redis_keeps_messages():
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_worker_exports_metrics_where_prometheus_scrapes():
    args = SERVICES["worker"]["command"]
    assert args[args.index("--metrics-port") + 1] == "9808"
    assert SERVICES["worker"]["stop_grace_period"] == "90s"


def test_flower_asks_for_a_password():
    assert ":?" in SERVICES["flower"]["environment"]["FLOWER_BASIC_AUTH"]


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if s.get("ports")))
def test_published_ports_are_bound_to_loopback_unless_overridden(name):
    for port in SERVICES[name]["ports"]:
        assert isinstance(port, str) and port.startswith("${LLMGW_BIND:-127.0.0.1}:"), name
        by_default = port.replace("${LLMGW_BIND:-127.0.0.1}", "127.0.0.1")
        assert by_default.count(":") == 2, f"{name}: {port!r}"  # host:published:container


def test_the_api_has_time_to_finish_its_longest_wait_on_stop():
    graceful = graceful_timeout(Settings(_env_file=None))  # type: ignore[call-arg]
    assert graceful >= Settings.model_fields["sync_timeout_seconds"].default
    grace = SERVICES["api"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > graceful


def test_prometheus_and_grafana_mount_files_that_exist():
    for name in ("prometheus", "grafana", "alertmanager", "alertmanager-webhook"):
        for volume in SERVICES[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_dockerfile_builds_the_package_with_postgres_on_python_311_slim():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert 'pip install ".[postgres]"' in dockerfile
    copied = set(re.findall(r"^COPY (\w+)/ ", dockerfile, re.M))
    packages = {"llmgw", "api", "jobs", "routing", "providers", "workers", "storage", "monitoring"}
    assert copied >= packages | {"migrations"}
