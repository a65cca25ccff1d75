"""deploy/: the Grafana dashboard and the Prometheus alert rules read, and
name only metrics this code exports (issue 15, item 1)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from quatrix_mfa.metrics import METRIC_NAMES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAME = re.compile(r"\bquatrix_mfa_[a-z0-9_]+")
SUFFIXES = ("", "_bucket", "_count", "_sum")


def exported(name: str) -> bool:
    return any(name == metric + suffix for metric in METRIC_NAMES for suffix in SUFFIXES)


def test_the_alert_rules_cover_errors_429s_p99_and_the_outbox_with_real_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    used = {name for expr in alerts.values() for name in NAME.findall(expr)}
    assert used and all(exported(name) for name in used), used
    assert 'status=~"5.."' in alerts["QuatrixMfaErrorRate"]
    assert "quatrix_mfa_http_rate_limited_total" in alerts["QuatrixMfaThrottling"]
    assert "histogram_quantile(0.99" in alerts["QuatrixMfaSlowAnswers"]
    assert "quatrix_mfa_outbox_depth" in alerts["QuatrixMfaOutboxGrowing"]


def test_the_dashboard_graphs_every_metric_and_no_other() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert all(exported(name) for name in used), used
    base = {name.removesuffix("_bucket") for name in used}
    assert base == set(METRIC_NAMES)
