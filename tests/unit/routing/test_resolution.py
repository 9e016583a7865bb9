from __future__ import annotations

import pytest

from routing.errors import MalformedModelId, UnknownChannel, UnknownModel
from routing.model_id import parse_model_id
from routing.service import resolve


@pytest.mark.parametrize(
    ("model_id", "model", "channel"),
    [
        ("yandexgpt-lite:latest", "yandexgpt-lite", "latest"),
        ("yandexgpt:rc", "yandexgpt", "rc"),
        ("yandexgpt-32k:deprecated", "yandexgpt-32k", "deprecated"),
        ("GigaChat-Pro", "GigaChat-Pro", "latest"),
        ("GigaChat:RC", "GigaChat", "rc"),
    ],
)
def test_parse(model_id, model, channel):
    ref = parse_model_id(model_id)
    assert (ref.model, ref.channel) == (model, channel)


@pytest.mark.parametrize("bad", ["", ":rc", "a:b:c", "yandex gpt", "x:", "-x"])
def test_parse_rejects_malformed(bad):
    with pytest.raises(MalformedModelId):
        parse_model_id(bad)


def test_resolve_is_case_insensitive_and_builds_the_queue(unit_runtime):
    with unit_runtime.sessions() as session:
        route = resolve(session, "GIGACHAT-pro:rc")
    assert route.provider == "gigachat"
    assert route.model == "GigaChat-Pro"
    assert route.upstream_id == "GigaChat-Pro-preview"
    assert route.queue == "gigachat.rc"


def test_resolve_deprecated_carries_the_sunset(unit_runtime):
    with unit_runtime.sessions() as session:
        route = resolve(session, "yandexgpt-32k:deprecated")
    assert route.status == "deprecated" and route.sunset_at is not None
    assert route.upstream_id == "yandexgpt-32k/deprecated"


def test_resolve_unknowns(unit_runtime):
    with unit_runtime.sessions() as session:
        with pytest.raises(UnknownModel) as model_error:
            resolve(session, "claude")
        with pytest.raises(UnknownChannel) as channel_error:
            resolve(session, "GigaChat-Max:deprecated")
    assert "GigaChat-Max" in model_error.value.choices
    assert channel_error.value.choices == ["latest", "rc"]
