"""What our metrics expose, and a loose reading of PromQL: enough to catch a dashboard or
an alert that queries a metric or a label the code does not export."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase

from monitoring import metrics
from monitoring.collectors import FAMILIES

# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"instance", "job"})
NON_LLMGW_METRICS = frozenset({"up"})

# Exported names (llmgw_*) and recording-rule names (llmgw:<indicator>:<window>).
_NAME = re.compile(r"\bllmgw[_:][a-z0-9_:]+")
_SELECTOR = re.compile(r"\b(llmgw[_:][a-z0-9_:]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(by|without)\s*\(([^)]*)\)\s*\(")
_MATCHING = re.compile(r"\b(on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def exported_samples() -> dict[str, frozenset[str]]:
    """Every sample name our code exports -> its label names."""
    samples: dict[str, frozenset[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            labels = frozenset(value._labelnames)
            for suffix, extra in _SUFFIXES[value._type]:
                samples[value._name + suffix] = labels | extra
    for name, (_help, labels) in FAMILIES.items():
        samples[name] = frozenset(labels)
    return samples


RULES = Path(__file__).resolve().parents[3] / "monitoring" / "prometheus" / "rules.yml"


def recording_rules() -> dict[str, str]:
    """Every recording rule of monitoring/prometheus/rules.yml: name -> expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"]: rule["expr"] for group in groups for rule in group["rules"]}


def with_recorded(exported: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """`exported` plus the recorded series, each with the labels its expression keeps: those
    of its outermost `by (...)` (or, with none, of the metrics it reads). An expression that
    queries something not exported is left out, so a panel using it fails too."""
    samples = dict(exported)
    for name, expr in recording_rules().items():
        if problems(expr, exported):
            continue
        grouping = _GROUPING.search(_STRING.sub('""', expr))
        if grouping and grouping.group(1) == "by":
            labels = frozenset(_labels(grouping.group(2))) - {"le"}
        elif re.match(r"\s*(sum|max|min|avg|count)\s*\(", expr):
            labels = frozenset()  # aggregated without by: no label is left
        else:
            labels = labels_available(expr, exported) - TARGET_LABELS
        samples[name] = labels
    return samples


_SUFFIXES = {
    "counter": [("_total", frozenset())],
    "gauge": [("", frozenset())],
    "histogram": [
        ("_bucket", frozenset({"le"})),
        ("_sum", frozenset()),
        ("_count", frozenset()),
    ],
}


def metric_names(expr: str) -> set[str]:
    return set(_NAME.findall(_STRING.sub('""', expr)))


def problems(expr: str, exported: dict[str, frozenset[str]]) -> list[str]:
    """Unknown metrics, matchers on labels a metric lacks, grouping by labels that an
    aggregated metric lacks, quantiles of something that is not a histogram's buckets."""
    found = [f"unknown metric {name}" for name in metric_names(expr) if name not in exported]
    if found:
        return found
    for name, matchers in _SELECTOR.findall(expr):
        for label in _MATCHER.findall(_STRING.sub('""', matchers)):
            if label not in exported[name] | TARGET_LABELS:
                found.append(f"{name} has no label {label!r}")
    bare = _STRING.sub('""', expr)
    for match in _GROUPING.finditer(bare):
        inner = metric_names(_balanced(bare, match.end() - 1))
        for label in _labels(match.group(2)):
            missing = [m for m in inner if label not in exported[m] | TARGET_LABELS]
            if missing:
                found.append(f"{match.group(1)} ({label}) but {missing} lack it")
    for match in re.finditer(r"\bhistogram_quantile\s*\(", bare):
        inner = _balanced(bare, match.end() - 1)
        if not all(name.endswith("_bucket") for name in metric_names(inner)):
            found.append(f"histogram_quantile over a non-histogram: {inner}")
        for grouping in _GROUPING.finditer(inner):
            if grouping.group(1) == "by" and "le" not in _labels(grouping.group(2)):
                found.append(f"histogram_quantile aggregates le away: {inner}")
    for match in _MATCHING.finditer(bare):
        for label in _labels(match.group(2)):
            if not any(label in exported[m] for m in metric_names(bare)):
                found.append(f"{match.group(1)} ({label}) is on no metric of the expression")
    return found


def labels_available(expr: str, exported: dict[str, frozenset[str]]) -> frozenset[str]:
    names = metric_names(expr)
    return frozenset().union(*(exported.get(n, frozenset()) for n in names)) | TARGET_LABELS


def _labels(text: str) -> list[str]:
    return [label.strip() for label in text.split(",") if label.strip()]


def _balanced(text: str, start: int) -> str:
    """The parenthesised group opening at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start : i + 1]
    raise ValueError(f"unbalanced parentheses in {text!r}")
