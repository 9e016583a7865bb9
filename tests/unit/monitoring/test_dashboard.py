"""The provisioned Grafana dashboards query only what the code exports (and the recording
rules of monitoring/prometheus/rules.yml compute from it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.unit.monitoring.promql import (
    exported_samples,
    labels_available,
    problems,
    with_recorded,
)

GRAFANA = Path(__file__).resolve().parents[3] / "monitoring" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
EXPORTED = with_recorded(exported_samples())
NAMES = ["llmgw-providers.json", "llmgw-slo.json", "llmgw.json"]


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found += [panel] if panel["type"] != "row" else []
        found += panel.get("panels", [])
    return found


def dashboard_panels() -> list[tuple[str, dict]]:
    return [
        (f"{path.name}:{panel['title']}", panel)
        for path in DASHBOARDS
        for panel in panels(json.loads(path.read_text()))
    ]


def test_the_dashboards_are_valid_json_with_unique_ids():
    assert [p.name for p in DASHBOARDS] == NAMES
    uids = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"]
        uids.append(dashboard["uid"])
        ids = [panel["id"] for panel in dashboard["panels"]]
        ids += [inner["id"] for panel in dashboard["panels"] for inner in panel.get("panels", [])]
        assert len(ids) == len(set(ids)), path.name
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize(("where", "panel"), dashboard_panels(), ids=lambda v: str(v)[:60])
def test_every_panel_has_a_datasource_and_targets_on_exported_metrics(where, panel):
    assert panel["datasource"]["uid"] == provisioned_datasource_uid(), where
    assert panel["targets"], f"{where}: no target"
    for target in panel["targets"]:
        expr = target["expr"]
        assert re.search(r"\bllmgw[_:]", expr), f"{where}: {expr}"
        assert problems(expr, EXPORTED) == [], f"{where}: {expr}"
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert legend_labels <= labels_available(expr, EXPORTED), f"{where}: legend"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_template_variables_use_exported_labels(path):
    dashboard = json.loads(path.read_text())
    used = " ".join(t["expr"] for p in panels(dashboard) for t in p["targets"])
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
        assert match, variable["definition"]
        metric, label = match.groups()
        assert label in EXPORTED[metric], variable["definition"]
        assert f"${variable['name']}" in used, f"${variable['name']} filters nothing"


def test_the_dashboard_covers_what_operators_watch():
    exprs = " ".join(t["expr"] for _, p in dashboard_panels() for t in p["targets"])
    for metric in exported_samples():
        family = re.sub(r"_(bucket|sum|count)$", "", metric)
        assert family in exprs, f"no panel shows {family}"
    assert "sum by (le, provider, model, channel)" in exprs  # latency per version


def provisioned_datasource_uid() -> str:
    provisioning = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (datasource,) = provisioning["datasources"]
    return datasource["uid"]


def test_dashboard_provisioning_points_where_compose_mounts_the_dashboards():
    provisioning = yaml.safe_load((GRAFANA / "provisioning/dashboards/llmgw.yml").read_text())
    (provider,) = provisioning["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def exprs_of(name: str) -> list[tuple[str, str]]:
    dashboard = json.loads((GRAFANA / "dashboards" / name).read_text())
    return [(p["title"], t["expr"]) for p in panels(dashboard) for t in p["targets"]]


def test_the_provider_comparison_sets_providers_and_versions_side_by_side():
    exprs = exprs_of("llmgw-providers.json")
    by_provider = [e for _, e in exprs if re.search(r"by \((from_)?provider[),]", e)]
    by_version = [e for _, e in exprs if 'model=~"$model"' in e]
    for wanted in (
        "llmgw_jobs_submitted_total",
        "error_class",
        "llmgw_tokens_total",
        "llmgw_cost_total",
        "llmgw_fallbacks_total",
    ):
        assert any(wanted in e for e in by_provider), f"no provider panel with {wanted}"
        assert any(wanted in e for e in by_version), f"no version panel with {wanted}"
    for quantile in ("0.5", "0.95", "0.99"):
        wanted = f"histogram_quantile({quantile}, sum by (le, provider) ("
        assert any(wanted in e for _, e in exprs), f"no p{quantile} by provider"
    for name in ("p50", "p95", "p99"):
        assert any(f"llmgw:provider_call_seconds:{name}_rate5m" in e for e in by_version)
    cost = [e for t, e in exprs if t.startswith("Cost per 1,000 requests")]
    assert cost and all(e.startswith("1000 * ") for e in cost)


def test_the_slo_dashboard_shows_the_budget_remaining_at_the_1_percent_objective():
    exprs = dict(exprs_of("llmgw-slo.json"))
    remaining = exprs["Error budget remaining, 30 days"]
    # The same expression promtool checks in alerts_test.yml (promql_expr_test).
    assert remaining.startswith("1 - llmgw:job_error_ratio:rate30d{") and remaining.endswith(
        "} / 0.01"
    )
    assert "llmgw_model_sunset_timestamp_seconds" in exprs["Days until sunset, per version"]
