"""Is a catalogue sound? What `llmgw db check` reports after a migration or a restore.

Pure over a `Catalogue` snapshot: each problem is one human line naming the model. What is
checked is what resolution and planning rely on and the database cannot enforce: every model
has a live `latest` (a bare model id resolves to it), channels are the closed set, a
deprecated version says when it goes away (the Sunset header and the sunset alert read it),
successors and cross-provider equivalents name models that exist, an alias does not hide a
model, and prices are not negative. An empty catalogue is a problem too: nothing resolves
(`llmgw models seed`).
"""

from __future__ import annotations

from routing.model_id import CHANNELS
from routing.snapshot import Catalogue, ModelEntry


def catalogue_problems(catalogue: Catalogue) -> list[str]:
    if not catalogue.models:
        return ["empty: no model resolves (`llmgw models seed` adds the built-in catalogue)"]
    problems: list[str] = []
    for model in sorted(catalogue.models.values(), key=lambda m: m.name.lower()):
        problems += [f"{model.name}: {p}" for p in _model_problems(catalogue, model)]
    for alias, target in sorted(catalogue.aliases.items()):
        if alias in catalogue.models and alias != target:
            problems.append(f"alias {alias!r} of {target} hides the model of that name")
    return problems


def _model_problems(catalogue: Catalogue, model: ModelEntry) -> list[str]:
    problems = []
    live = model.live_channels()
    if "latest" not in live:
        problems.append("no live latest channel: the bare model id does not resolve")
    for version in model.versions:
        if version.channel not in CHANNELS:
            problems.append(f"unknown channel {version.channel!r} (known: {', '.join(CHANNELS)})")
        if version.status == "deprecated" and version.sunset_at is None:
            problems.append(f"{version.channel}: deprecated without a sunset date")
    if model.successor and not _known(catalogue, model.successor.split(":")[0]):
        problems.append(f"successor {model.successor} is not in the catalogue")
    for name in model.equivalents:
        if not _known(catalogue, name):
            problems.append(f"equivalent {name} is not in the catalogue")
    pricing = model.pricing
    if pricing and min(pricing.prompt_per_1k, pricing.completion_per_1k) < 0:
        problems.append("negative price")
    return problems


def _known(catalogue: Catalogue, name: str) -> bool:
    key = name.lower()
    return catalogue.aliases.get(key, key) in catalogue.models
