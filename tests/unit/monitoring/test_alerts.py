"""Alert rules: parse, carry what an operator needs, and query only exported metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.unit.monitoring.promql import (
    NON_LLMGW_METRICS,
    exported_samples,
    labels_available,
    metric_names,
    problems,
    recording_rules,
    with_recorded,
)

PROMETHEUS = Path(__file__).resolve().parents[3] / "monitoring" / "prometheus"
EXPORTED = with_recorded(exported_samples())
RUNBOOK = PROMETHEUS.parents[1] / "docs" / "runbook.md"


def rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


RULES = rules()
EXPECTED = {
    "LlmgwProviderErrorBudgetBurn",  # provider calls burning a 1 % budget, per version
    "LlmgwProviderLatencyP95High",  # p95 latency SLO
    "LlmgwCircuitOpen",  # open for long
    "LlmgwQueueBacklogGrowing",
    "LlmgwInteractiveQueueWaitHigh",  # 95 % of interactive jobs claimed within 250 ms
    "LlmgwErrorBudgetBurnFast",  # jobs: multi-window multi-burn-rate at the 1 % objective
    "LlmgwErrorBudgetBurnSlow",
    "LlmgwDeprecatedTrafficNearSunset",
    "LlmgwRcErrorsWorseThanLatest",
    "LlmgwRcSlowerThanLatest",
    "LlmgwNoWorkerConsuming",
    "LlmgwWorkerMetricsDown",
    "LlmgwApiErrorBudgetBurn",  # 99.9 % of API responses not 5xx
    "LlmgwApiSubmitLatencyP95High",
    "LlmgwApiDown",
    "LlmgwRedisUnreadable",
}


def test_the_alerts_operators_asked_for_exist_once():
    names = [rule["alert"] for rule in RULES]
    assert len(names) == len(set(names))
    assert set(names) == EXPECTED


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["alert"])
def test_each_rule_has_expr_for_severity_and_a_human_summary(rule):
    assert rule["expr"].strip()
    assert re.fullmatch(r"\d+[smh]", rule["for"])
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["alert"])
def test_each_rule_queries_exported_metrics_and_labels(rule):
    expr = rule["expr"]
    others = set(re.findall(r"(?<![\w:])([\w:]+)\{", expr)) - metric_names(expr)
    assert metric_names(expr) or others, "queries nothing"
    assert others <= NON_LLMGW_METRICS, f"queries {others}"
    assert problems(expr, EXPORTED) == []
    text = " ".join(rule["annotations"].values())
    used = set(re.findall(r"\$labels\.(\w+)", text))
    assert used <= labels_available(expr, EXPORTED)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["alert"])
def test_each_rule_links_its_runbook_section(rule):
    anchor = rule["alert"].lower()
    assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{anchor}"
    assert f"docs/runbook.md#{anchor}" in " ".join(rule["annotations"]["description"].split())
    runbook = RUNBOOK.read_text()
    assert re.search(rf"^#+ `?{rule['alert']}`?\s*$", runbook, re.M), "no runbook heading"


def test_every_runbook_section_is_an_alert_that_exists():
    headings = re.findall(r"^### `?(Llmgw\w+)`?\s*$", RUNBOOK.read_text(), re.M)
    assert sorted(headings) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(recording_rules()))
def test_each_recording_rule_is_named_and_queries_exported_metrics(name):
    assert re.fullmatch(r"llmgw:[a-z0-9_]+:[a-z0-9_]+", name)
    assert problems(recording_rules()[name], exported_samples()) == []
    assert name in EXPORTED  # its labels are known to the alert and dashboard checks


def test_every_recorded_series_is_read_by_an_alert_or_a_dashboard():
    dashboards = PROMETHEUS.parents[0] / "grafana" / "dashboards"
    readers = " ".join(rule["expr"] for rule in RULES) + " ".join(
        path.read_text() for path in dashboards.glob("*.json")
    )
    unread = [name for name in recording_rules() if name not in readers]
    assert unread == []


def test_every_recorded_series_is_checked_by_a_promtool_unit_test():
    """Each SLI is evaluated by `promtool test rules alerts_test.yml`: in a `promql_expr_test`
    of its own, or read by an alert that has an `alert_rule_test`."""
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    tested_alerts = {
        case["alertname"] for test in tests for case in test.get("alert_rule_test", [])
    }
    checked = " ".join(
        case["expr"] for test in tests for case in test.get("promql_expr_test", [])
    ) + " ".join(rule["expr"] for rule in RULES if rule["alert"] in tested_alerts)
    unchecked = [name for name in recording_rules() if not re.search(rf"{name}\b", checked)]
    assert unchecked == []


def test_prometheus_scrapes_the_api_and_the_worker_and_notifies_alertmanager():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["llmgw-api"]["dns_sd_configs"][0]["port"] == 8000
    assert jobs["llmgw-worker"]["dns_sd_configs"][0]["port"] == 9808
    assert config["rule_files"] == ["rules.yml", "alerts.yml"]
    (manager,) = config["alerting"]["alertmanagers"]
    assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]
