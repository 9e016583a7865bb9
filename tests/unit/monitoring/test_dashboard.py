"""The provisioned Grafana dashboard queries only what the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.unit.monitoring.promql import exported_samples, labels_available, problems

GRAFANA = Path(__file__).resolve().parents[3] / "monitoring" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
EXPORTED = exported_samples()


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


def test_there_is_a_dashboard_and_it_is_valid_json():
    assert [p.name for p in DASHBOARDS] == ["llmgw.json"]
    dashboard = json.loads(DASHBOARDS[0].read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("where", "panel"), dashboard_panels(), ids=lambda v: str(v)[:60])
def test_every_panel_has_a_datasource_and_targets_on_exported_metrics(where, panel):
    assert panel["datasource"]["uid"] == provisioned_datasource_uid(), where
    assert panel["targets"], f"{where}: no target"
    for target in panel["targets"]:
        expr = target["expr"]
        assert re.search(r"\bllmgw_", expr), f"{where}: {expr}"
        assert problems(expr, EXPORTED) == [], f"{where}: {expr}"
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert legend_labels <= labels_available(expr, EXPORTED), f"{where}: legend"


def test_template_variables_use_exported_labels():
    dashboard = json.loads(DASHBOARDS[0].read_text())
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
        assert match, variable["definition"]
        metric, label = match.groups()
        assert label in EXPORTED[metric], variable["definition"]


def test_the_dashboard_covers_what_operators_watch():
    exprs = " ".join(t["expr"] for _, p in dashboard_panels() for t in p["targets"])
    for metric in EXPORTED:
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
