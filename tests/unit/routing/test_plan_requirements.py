"""The plan skips candidates that cannot serve the request's features (reason
`unsupported`), against the seeded catalogue's capabilities; a plan left with none for that
reason alone is a 400 `unsupported_parameter` naming the parameter and the model."""

from __future__ import annotations

import pytest

from routing.breaker import CircuitsSeen
from routing.errors import NoRouteAvailable, UnsupportedParameter
from routing.plan import FallbackPolicy, Requirement, plan

TOOLS = (Requirement("tools", "tools"),)


def make_plan(runtime, model_id, policy=None, **kwargs):
    with runtime.sessions() as session:
        return plan(session, model_id, policy, **kwargs)


def test_a_version_without_tools_is_skipped_as_unsupported(unit_runtime):
    result = make_plan(unit_runtime, "yandexgpt:rc", requirements=TOOLS)
    assert [c.route.model_id for c in result.candidates] == ["yandexgpt:rc", "yandexgpt:latest"]
    [skipped] = result.skipped
    assert (skipped.route.model_id, skipped.reason) == ("yandexgpt:deprecated", "unsupported")
    assert "lacks tools" in skipped.detail and "`tools`" in skipped.detail


def test_no_candidate_with_tools_is_unsupported_parameter(unit_runtime):
    result = make_plan(unit_runtime, "yandexgpt:deprecated", requirements=TOOLS)
    with pytest.raises(UnsupportedParameter) as raised:
        _ = result.primary
    assert raised.value.details["param"] == "tools"
    assert raised.value.details["model"] == "yandexgpt:deprecated"
    assert "yandexgpt:deprecated" in raised.value.message


def test_cross_provider_candidate_is_checked_too(unit_runtime):
    schema = (Requirement("response_format", "json_schema"),)
    policy = FallbackPolicy(cross_provider=True)
    result = make_plan(unit_runtime, "yandexgpt-lite", policy, requirements=schema)
    assert [c.route.model_id for c in result.candidates] == ["yandexgpt-lite:latest"]
    assert ("GigaChat:latest", "unsupported") in [
        (s.route.model_id, s.reason) for s in result.skipped
    ]


def test_provider_limited_requirement(unit_runtime):
    only_yandex = (Requirement("tool_choice", providers=("yandexgpt",)),)
    assert make_plan(unit_runtime, "yandexgpt", requirements=only_yandex).candidates
    with pytest.raises(UnsupportedParameter) as raised:
        _ = make_plan(unit_runtime, "GigaChat", requirements=only_yandex).primary
    assert raised.value.details["param"] == "tool_choice"


def test_an_open_circuit_beside_unsupported_is_an_outage_not_a_400(unit_runtime):
    class AllOpen:
        def look(self, keys):
            return CircuitsSeen(open=frozenset(keys))

    result = make_plan(unit_runtime, "yandexgpt:rc", requirements=TOOLS, breaker=AllOpen())
    with pytest.raises(NoRouteAvailable) as raised:
        _ = result.primary
    assert not isinstance(raised.value, UnsupportedParameter)
