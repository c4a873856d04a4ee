"""The new roles run clean in check mode on a fresh host and change nothing there."""

from pathlib import Path

import pytest


@pytest.mark.parametrize("role, variables", [
    ("loki", {"loki_gateway_enabled": True, "loki_agent_password": "x"}),
    ("promtail", {"log_agent": "promtail", "loki_agent_password": "x"}),
    ("alloy", {"log_agent": "alloy", "loki_agent_password": "x"}),
    ("cadvisor", {"cadvisor_publish_address": "127.0.0.1"}),
])  # fmt: skip
def test_check_mode_on_a_fresh_host(run_role_tasks, tmp_path: Path, role: str, variables: dict):
    stack_dir = tmp_path / "opt"
    stack_dir.mkdir()
    (stack_dir / "secrets").mkdir()
    (stack_dir / "services").mkdir()
    variables = {"stack_dir": str(stack_dir), "stack_render_only_services": [role]} | variables
    groups = {"monitoring": {"mon1": {"aicost_host_address": "10.0.0.1",
                                      "loki_gateway_enabled": True}},
              "log_agents": {"localhost": {}}, "node_exporters": {"localhost": {}}}  # fmt: skip
    result = run_role_tasks(role, "main", variables, groups=groups, check_mode=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in stack_dir.rglob("*")) == ["secrets", "services"]
