"""The registry: a plain dict of factories, and instances built from explicit configs."""

from __future__ import annotations

import ast
from pathlib import Path

import fakeredis
import pytest

from providers.gigachat import GigaChatProvider
from providers.registry import PROVIDERS, build_provider
from providers.yandexgpt import YandexGPTProvider
from tests.unit.providers.conftest import giga_config, yandex_config

CONFIGS = {"yandexgpt": yandex_config(api_key="k"), "gigachat": giga_config()}


def test_registry_names_both_adapters():
    assert {"yandexgpt": YandexGPTProvider, "gigachat": GigaChatProvider} == PROVIDERS


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_build_provider_returns_independent_instances(name):
    config = CONFIGS[name]
    first = build_provider(name, config, redis=fakeredis.FakeRedis())
    second = build_provider(name, config)
    assert all(callable(getattr(first, m)) for m in ("complete", "count_tokens", "list_models"))
    assert first is not second
    assert first.name == name
    assert first.config is config


def test_unknown_provider():
    with pytest.raises(KeyError, match="openai"):
        build_provider("openai", yandex_config())


def test_providers_do_not_import_the_composition_root():
    """providers/ is a domain package: it may not import `llmgw` (the import-graph rule)."""
    package = Path(__file__).resolve().parents[3] / "providers"
    offenders = [
        f"{path.relative_to(package)}: {module}"
        for path in package.rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] == "llmgw"
    ]
    assert offenders == []


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    froms = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    return names + froms
