"""Every role documents each of its defaults in meta/argument_specs.yml, and nothing else."""

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).parents[2] / "roles").iterdir() if p.is_dir())


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_match_defaults_key_for_key(role: Path) -> None:
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    documented = set(specs["argument_specs"]["main"]["options"])
    assert documented == set(defaults), (
        f"undocumented: {sorted(set(defaults) - documented)}, "
        f"documented but not in defaults: {sorted(documented - set(defaults))}"
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_variable_carries_the_role_prefix(role: Path) -> None:
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    assert [k for k in defaults if not k.startswith(f"{role.name}_")] == []


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_documented_defaults_equal_the_real_ones(role: Path) -> None:
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"][
        "main"
    ]["options"]
    stated = {
        name: spec["default"]
        for name, spec in options.items()
        # A default computed from the inventory is described in words instead.
        if "default" in spec and "{{" not in str(defaults.get(name))
    }
    assert {name: defaults[name] for name in stated} == stated
