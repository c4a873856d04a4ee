"""Each module's DOCUMENTATION parses and documents exactly the options its spec accepts."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml

MODULES = ("timescaledb_init", "timescaledb_backup", "timescaledb_restore")
# The doc fragments each module extends: the attribute of ModuleDocFragment each one names.
FRAGMENTS = {
    "timescaledb_init": {"aicost.monitoring.timescaledb": "DOCUMENTATION"},
    "timescaledb_backup": {
        "aicost.monitoring.timescaledb": "DOCUMENTATION",
        "aicost.monitoring.timescaledb.tool": "TOOL",
    },
    "timescaledb_restore": {
        "aicost.monitoring.timescaledb": "DOCUMENTATION",
        "aicost.monitoring.timescaledb.tool": "TOOL",
    },
}
PACKAGE = "ansible_collections.aicost.monitoring.plugins"


def documented_strings(module_name: str) -> dict[str, str]:
    module = importlib.import_module(f"{PACKAGE}.modules.{module_name}")
    tree = ast.parse(Path(module.__file__).read_text())
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")
    }


@pytest.mark.parametrize("module_name", MODULES)
def test_documentation_matches_the_argument_spec(module_name):
    strings = documented_strings(module_name)
    documentation = yaml.safe_load(strings["DOCUMENTATION"])
    fragment = importlib.import_module(f"{PACKAGE}.doc_fragments.timescaledb")
    fragments = FRAGMENTS[module_name]
    assert documentation["extends_documentation_fragment"] == list(fragments)
    shared = {}
    for attribute in fragments.values():
        options = yaml.safe_load(getattr(fragment.ModuleDocFragment, attribute))["options"]
        assert not set(options) & set(shared), attribute
        shared.update(options)
    documented = {**shared, **documentation["options"]}
    spec = importlib.import_module(f"{PACKAGE}.modules.{module_name}").argument_spec()
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name]["type"] == option["type"], name
        assert documented[name].get("default") == option.get("default"), name
    assert set(documentation["attributes"]) == {"check_mode", "diff_mode"}
    assert yaml.safe_load(strings["EXAMPLES"])
    assert yaml.safe_load(strings["RETURN"])


@pytest.mark.parametrize("module_name", MODULES)
def test_secrets_are_no_log(module_name):
    spec = importlib.import_module(f"{PACKAGE}.modules.{module_name}").argument_spec()
    for name, option in spec.items():
        assert option.get("no_log", False) == name.endswith("password"), name
