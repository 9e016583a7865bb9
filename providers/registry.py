"""Provider name → factory. Each instance is built from its own config, never a mutated global.

Decisions:
- A plain dict whose values are the adapter classes: a class already is a factory
  `(config, *, redis=None) -> Provider`, so no wrapper functions. `PROVIDERS` is also
  the list of provider names other packages enumerate (`workers.queues`).
- The config is typed loosely in the dict (it holds factories of different config types)
  and not checked again here: each adapter reads its config in `__init__`, so a config of
  the wrong provider fails when the adapter is built, and `llmgw.provider_configs` is
  unit-tested to hand each name its own type.
- Nothing here imports `llmgw`: the composition root maps its settings onto configs
  (`llmgw.provider_configs`) and calls `build_provider`.
"""

from __future__ import annotations

from typing import Any, Protocol

from providers.base import Provider
from providers.config import ProviderConfig
from providers.gigachat import GigaChatProvider
from providers.yandexgpt import YandexGPTProvider


class ProviderFactory(Protocol):
    def __call__(self, config: Any, *, redis: Any = None) -> Provider: ...


PROVIDERS: dict[str, ProviderFactory] = {
    "yandexgpt": YandexGPTProvider,
    "gigachat": GigaChatProvider,
}


# What only some providers can do whatever the catalogue says (`jobs.features` turns it into
# plan requirements): GigaChat's `function_call` has no "required" among several functions
# (with one it is that function by name), and neither API has stop sequences.
PROVIDER_FEATURES: dict[str, frozenset[str]] = {
    "yandexgpt": frozenset({"tool_choice_required"}),
    "gigachat": frozenset(),
}


def providers_with(feature: str) -> tuple[str, ...]:
    return tuple(sorted(name for name, has in PROVIDER_FEATURES.items() if feature in has))


def build_provider(name: str, config: ProviderConfig, *, redis: Any = None) -> Provider:
    """A new adapter for `name`; `redis` (optional) shares cached tokens across processes."""
    try:
        factory = PROVIDERS[name]
    except KeyError:
        raise KeyError(f"Unknown provider {name!r}; known: {sorted(PROVIDERS)}") from None
    return factory(config, redis=redis)
