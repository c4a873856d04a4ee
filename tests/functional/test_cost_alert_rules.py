"""The LLM cost alert rules of the prometheus role, checked and unit-tested by promtool.

The template is rendered with plain jinja2 from the role defaults, the way Ansible renders it,
into a directory that also holds the promtool unit tests of tests/rules/; promtool from the
Prometheus test image then checks the rules and runs the tests. Every alert of the template
needs a test case where it fires and one where it stays quiet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "prometheus"
RULE_TESTS = REPO / "tests" / "rules"
RULES_FILE = "aicost-cost.yml"  # the name the unit tests' rule_files point at
PROMTOOL_IMAGE = "aicost-test/prometheus:trixie"  # Prometheus 2.53; the role pins 3.5

# A value for every threshold that appears nowhere in the default rendering, and the alert
# whose expression must carry it.
CHANGED = {
    "hourly_usd": (123.5, "CostHourlySpendHigh"),
    "provider_hourly_usd": (77.25, "CostHourlySpendHighByProvider"),
    "spend_for": ("7m", "CostHourlySpendHighByProvider"),
    "spike_factor": (4.5, "CostHourlySpendAnomalous"),
    "spike_min_usd": (12.75, "CostHourlySpendAnomalous"),
    "rolling_24h_usd": (5432.1, "CostRolling24hSpendHigh"),
    "budget_warning_ratio": (0.65, "CostBudgetDayNearlySpent"),
    "budget_critical_ratio": (0.95, "CostBudgetMonthExceeded"),
    "burn_fast_factor": (16.5, "CostBudgetBurnRateFast"),
    "burn_fast_long_window": ("61m", "CostBudgetBurnRateFast"),
    "burn_fast_short_window": ("7m", "CostBudgetBurnRateFast"),
    "burn_slow_factor": (5.5, "CostBudgetBurnRateSlow"),
    "burn_slow_long_window": ("361m", "CostBudgetBurnRateSlow"),
    "burn_slow_short_window": ("31m", "CostBudgetBurnRateSlow"),
    "forecast_window": ("13h", "CostBudgetMonthForecastExceeded"),
    "forecast_ratio": (1.15, "CostBudgetMonthForecastExceeded"),
    "collector_stale_factor": (3.5, "CostCollectorStale"),
    "collector_error_window": ("2h", "CostCollectorFailing"),
    "unpriced_window": ("3h", "CostUnpricedTokens"),
    "ingest_rejected_per_second": (0.125, "CostIngestRejections"),
    "ingest_rejected_window": ("17m", "CostIngestRejections"),
    "spool_max_bytes": (536870912, "CostSpoolFilling"),
    "spool_ratio": (0.66, "CostSpoolFilling"),
    "cost_monitor_job": ("llm-costs", "CostMonitorDown"),
    "price_catalog_max_age_days": (45, "CostPriceCatalogOld"),
    "billing_drift_ratio": (0.075, "CostBillingDrift"),
    "billing_min_billed_usd": (25.5, "CostBillingDrift"),
    "backup_stale_hours": (43, "BackupStale"),
    "container_memory_ratio": (0.85, "ContainerMemoryNearLimit"),
    "container_memory_for": ("7m", "ContainerMemoryNearLimit"),
}


def default_thresholds() -> dict[str, Any]:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    return defaults["prometheus_cost_alerts"]


def render(thresholds: dict[str, Any]) -> str:
    """The rule file as the role's template task writes it (Ansible trims blocks too)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        trim_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("cost-rules.yml.j2")
    return template.render({"__prometheus_cost_alerts": thresholds})


def alerts_of(rules_text: str) -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for group in yaml.safe_load(rules_text)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def promtool(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which("docker"), "these tests run promtool from the Prometheus test image"
    image = subprocess.run(
        ["docker", "image", "inspect", PROMTOOL_IMAGE], capture_output=True, check=False
    )
    assert image.returncode == 0, f"no {PROMTOOL_IMAGE}: build it with tests/images/build.sh"
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}",
         "-v", f"{directory}:/rules:ro", "--entrypoint", "/bin/promtool", PROMTOOL_IMAGE,
         *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip


def assert_success(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"promtool failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def default_rules() -> str:
    return render(default_thresholds())


def test_every_alert_has_a_firing_and_a_quiet_test_case(default_rules: str) -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in sorted(RULE_TESTS.glob("*.yml")):
        unit_tests = yaml.safe_load(path.read_text())
        assert unit_tests["rule_files"] == [RULES_FILE], path.name
        for group in unit_tests["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = set(alerts_of(default_rules))
    assert firing | quiet <= alerts, f"tests of unknown alerts: {sorted((firing | quiet) - alerts)}"
    assert alerts - firing == set(), "alerts without a test case where they fire"
    assert alerts - quiet == set(), "alerts without a test case where they stay quiet"


def test_every_alert_has_a_severity_summary_and_description(default_rules: str) -> None:
    for name, rule in alerts_of(default_rules).items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert set(rule["annotations"]) == {"summary", "description"}, name


def test_promtool_checks_the_rules_and_passes_their_unit_tests(
    default_rules: str, tmp_path: Path
) -> None:
    (tmp_path / RULES_FILE).write_text(default_rules)
    unit_tests = sorted(RULE_TESTS.glob("*.yml"))
    for path in unit_tests:
        shutil.copy(path, tmp_path / path.name)
    tmp_path.chmod(0o755)

    assert_success(promtool(tmp_path, "check", "rules", f"/rules/{RULES_FILE}"))
    assert_success(promtool(tmp_path, "test", "rules", *(f"/rules/{p.name}" for p in unit_tests)))


def test_every_threshold_reaches_its_alert(default_rules: str, tmp_path: Path) -> None:
    assert set(CHANGED) == set(default_thresholds()), "CHANGED must name every threshold"
    thresholds = {key: change[0] for key, change in CHANGED.items()}
    rules = render(thresholds)
    (tmp_path / RULES_FILE).write_text(rules)
    tmp_path.chmod(0o755)

    assert_success(promtool(tmp_path, "check", "rules", f"/rules/{RULES_FILE}"))
    alerts = alerts_of(rules)
    for key, (value, alert) in CHANGED.items():
        assert str(value) not in default_rules, f"{key}: pick a value the defaults do not hold"
        reached = str(value) in alerts[alert]["expr"] or str(value) == alerts[alert].get("for")
        assert reached, f"{key} does not reach {alert}"


def test_documented_thresholds_equal_the_defaults() -> None:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]["prometheus_cost_alerts"]["options"]
    assert {key: spec["default"] for key, spec in options.items()} == default_thresholds()
    assert all(spec.get("type") and spec.get("description") for spec in options.values())
