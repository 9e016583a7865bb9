from __future__ import annotations

import calendar
from datetime import datetime

import pytest

from routing import ops
from routing.errors import (
    MalformedModelId,
    ModelSunset,
    UnknownChannel,
    UnknownModel,
    UnknownVersion,
)
from routing.model_id import parse_model_id
from routing.service import resolve, resolve_in
from routing.snapshot import load_catalogue


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


# --- aliases, pinned versions, deprecation and sunset ---------------------------------------

AFTER_SUNSET = datetime(2027, 3, 2)


def catalogue(runtime):
    with runtime.sessions() as session:
        return load_catalogue(session)


@pytest.mark.parametrize(
    ("alias", "model"),
    [
        ("yandexgpt-pro", "yandexgpt"),
        ("YandexGPT-5-Pro:rc", "yandexgpt"),
        ("gigachat-lite", "GigaChat"),
    ],
)
def test_aliases_resolve_to_their_model(unit_runtime, alias, model):
    with unit_runtime.sessions() as session:
        route = resolve(session, alias)
    assert route.model == model
    assert route.channel == (alias.split(":")[1] if ":" in alias else "latest")


def test_pinned_version_resolves_to_the_channel_serving_it(unit_runtime):
    with unit_runtime.sessions() as session:
        route = resolve(session, "yandexgpt:23.10.2024")
    assert (route.channel, route.version, route.upstream_id) == (
        "deprecated",
        "23.10.2024",
        "yandexgpt/deprecated",
    )
    assert route.queue == "yandexgpt.deprecated"


def test_unknown_version_lists_the_known_ones(unit_runtime):
    with unit_runtime.sessions() as session, pytest.raises(UnknownVersion) as error:
        resolve(session, "yandexgpt:01.01.2020")
    assert set(error.value.choices) == {"09.02.2025", "22.05.2025", "23.10.2024"}


def test_deprecated_route_carries_headers_and_a_warning(unit_runtime):
    route = resolve_in(catalogue(unit_runtime), "yandexgpt:deprecated")
    headers = route.deprecation_headers()
    assert headers["Deprecation"] == f"@{calendar.timegm((2026, 9, 1, 0, 0, 0))}"
    assert headers["Sunset"] == "Mon, 01 Mar 2027 00:00:00 GMT"
    [warning] = route.warnings()
    assert warning["code"] == "model_deprecated" and "2027-03-01" in warning["message"]
    assert resolve_in(catalogue(unit_runtime), "yandexgpt").deprecation_headers() == {}


def test_past_sunset_redirects_to_the_successor_and_says_so(unit_runtime):
    route = resolve_in(catalogue(unit_runtime), "yandexgpt:deprecated", now=AFTER_SUNSET)
    assert route.model_id == "yandexgpt:latest"
    assert route.redirected_from == "yandexgpt:deprecated"
    assert route.warnings()[0]["code"] == "model_redirected"


def test_model_successor_wins_over_the_same_models_latest(unit_runtime):
    route = resolve_in(catalogue(unit_runtime), "yandexgpt-32k:deprecated", now=AFTER_SUNSET)
    assert route.model_id == "yandexgpt:latest"


def test_past_sunset_rejects_when_the_policy_says_so(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.set_policy(session, "yandexgpt", actor="t", sunset_policy="reject")
        session.commit()
    with pytest.raises(ModelSunset) as error:
        resolve_in(catalogue(unit_runtime), "yandexgpt:deprecated", now=AFTER_SUNSET)
    assert error.value.details["successor"] == "yandexgpt:latest"
    assert "yandexgpt:latest" in error.value.choices


def test_version_out_of_service_redirects_to_the_successor(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.promote(session, "yandexgpt", actor="t")
        session.commit()
    route = resolve_in(catalogue(unit_runtime), "yandexgpt:23.10.2024")
    assert route.redirected_from == "yandexgpt:23.10.2024"
    assert route.model_id == "yandexgpt:latest" and route.version == "22.05.2025"


def test_retired_version_is_410_under_a_reject_policy(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.promote(session, "GigaChat", actor="t")
        ops.retire(session, "GigaChat:deprecated", actor="t")
        session.commit()
    with pytest.raises(ModelSunset) as error:
        resolve_in(catalogue(unit_runtime), "GigaChat:2.0.28")
    assert "GigaChat:2.0.28 is past its sunset" in error.value.message


def test_redirect_loops_end_in_a_410(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.retire(session, "yandexgpt", actor="t")
        session.commit()
    with pytest.raises(ModelSunset):
        resolve_in(catalogue(unit_runtime), "yandexgpt:rc")
