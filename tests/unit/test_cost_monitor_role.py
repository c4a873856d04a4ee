"""The cost_monitor role's preflight knows exactly the collector types the app has."""

from pathlib import Path

import yaml
from cost_monitor.collectors import COLLECTORS

ROLE = Path(__file__).parents[2] / "roles" / "cost_monitor"


def test_the_preflight_knows_every_collector_type_of_the_app() -> None:
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert sorted(role_vars["__cost_monitor_collector_types"]) == sorted(COLLECTORS)
