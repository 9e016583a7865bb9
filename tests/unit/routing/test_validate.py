"""`routing.validate.catalogue_problems`: what `llmgw db check` says of a catalogue."""

from __future__ import annotations

from datetime import datetime

from routing.catalogue import load_seed
from routing.snapshot import ModelEntry, Pricing, VersionEntry, build
from routing.validate import catalogue_problems


def version(channel: str, status: str = "active", sunset: datetime | None = None) -> VersionEntry:
    return VersionEntry(channel, f"up/{channel}", status, 10, sunset_at=sunset)


def model(name: str = "m", *versions: VersionEntry, **fields) -> ModelEntry:
    return ModelEntry(name, "yandexgpt", "f", 8000, versions or (version("latest"),), **fields)


def test_a_sound_catalogue_has_no_problem():
    sunset = datetime(2027, 1, 1)
    good = model(
        "m",
        version("latest"),
        version("deprecated", "deprecated", sunset),
        aliases=("m-alias",),
        successor="other:latest",
        equivalents=("other",),
        pricing=Pricing("RUB", 0.2, 0.2),
    )
    assert catalogue_problems(build([good, model("other")])) == []


def test_each_problem_is_named_with_its_model():
    bad = model(
        "m",
        version("rc"),
        version("latest", "retired"),
        version("deprecated", "deprecated"),
        version("beta"),
        successor="gone:latest",
        equivalents=("nowhere",),
        pricing=Pricing("RUB", -1, 0.2),
    )
    assert catalogue_problems(build([bad])) == [
        "m: no live latest channel: the bare model id does not resolve",
        "m: deprecated: deprecated without a sunset date",
        "m: unknown channel 'beta' (known: latest, rc, deprecated)",
        "m: successor gone:latest is not in the catalogue",
        "m: equivalent nowhere is not in the catalogue",
        "m: negative price",
    ]


def test_an_alias_that_hides_a_model_and_an_empty_catalogue():
    assert catalogue_problems(build([model("a", aliases=("b",)), model("b")])) == [
        "alias 'b' of a hides the model of that name"
    ]
    assert catalogue_problems(build([]))[0].startswith("empty:")


def test_the_built_in_catalogue_names_only_models_it_has():
    names = {m["name"].lower() for m in load_seed()["models"]}
    for spec in load_seed()["models"]:
        for other in spec.get("policy", {}).get("equivalents", []):
            assert other.lower() in names, (spec["name"], other)
