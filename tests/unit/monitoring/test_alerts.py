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
)

PROMETHEUS = Path(__file__).resolve().parents[3] / "monitoring" / "prometheus"
EXPORTED = exported_samples()


def rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


RULES = rules()
EXPECTED = {
    "LlmgwProviderErrorRateHigh",  # high provider error rate per version
    "LlmgwProviderLatencyP95High",  # p95 latency SLO
    "LlmgwCircuitOpen",  # open for long
    "LlmgwQueueBacklogGrowing",
    "LlmgwJobsFailing",
    "LlmgwNoWorkerConsuming",
    "LlmgwWorkerMetricsDown",
    "LlmgwApi5xxRateHigh",
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
    others = set(re.findall(r"\b(\w+)\{", expr)) - metric_names(expr)
    assert metric_names(expr) or others, "queries nothing"
    assert others <= NON_LLMGW_METRICS, f"queries {others}"
    assert problems(expr, EXPORTED) == []
    text = " ".join(rule["annotations"].values())
    used = set(re.findall(r"\$labels\.(\w+)", text))
    assert used <= labels_available(expr, EXPORTED)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["alert"])
def test_each_rule_links_its_runbook_section(rule):
    anchor = rule["alert"].lower()
    assert f"docs/operations.md#{anchor}" in rule["annotations"]["description"]
    operations = (PROMETHEUS.parents[1] / "docs" / "operations.md").read_text()
    assert re.search(rf"^#+ `?{rule['alert']}`?\s*$", operations, re.M), "no runbook heading"


def test_prometheus_scrapes_the_api_and_the_worker_metrics_port():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["llmgw-api"]["dns_sd_configs"][0]["port"] == 8000
    assert jobs["llmgw-worker"]["dns_sd_configs"][0]["port"] == 9808
    assert config["rule_files"] == ["alerts.yml"]
