"""The app configuration the cost_monitor role renders passes the app's own check-config, and
never runs the ingest API without a token."""

import json
from pathlib import Path

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from cost_monitor.config_check import check_config

ROLE = Path(__file__).parents[2] / "roles" / "cost_monitor"


def rendered_app_config(**overrides) -> dict:
    """__cost_monitor_app_config with the role's defaults (plus ``overrides``)."""
    loader = DataLoader()
    variables = {}
    for name in ("defaults", "vars"):
        path = ROLE / name / "main.yml"
        variables.update(loader.load_from_file(str(path), trusted_as_template=True))
    variables.update(stack_dir="/opt/aicost", role_path=str(ROLE), **overrides)
    templar = Templar(loader=loader, variables=variables)
    rendered = templar.template(trust_as_template("{{ __cost_monitor_app_config }}"))
    return json.loads(json.dumps(rendered))  # plain values, as to_nice_yaml writes them


def check(tmp_path: Path, config: dict) -> list[str]:
    path = tmp_path / "cost-monitor.yml"
    path.write_text(yaml.safe_dump(config))
    return check_config(path, environ={}).problems


def test_the_rendered_configuration_passes_check_config_with_a_tokens_file(tmp_path):
    config = rendered_app_config()
    assert config["auth"] == {"tokens_file": "/run/secrets/cost_monitor_ingest_tokens"}
    assert config["listen"]["host"] == "0.0.0.0"
    assert check(tmp_path, config) == []


def test_disabling_authentication_through_the_role_is_refused(tmp_path):
    config = rendered_app_config(cost_monitor_config={"auth": {"disabled": True}})
    assert check(tmp_path, config) == [
        "config.auth.disabled: true, but tokens are configured too; remove one or the other"
    ]
