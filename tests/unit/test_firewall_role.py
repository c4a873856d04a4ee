"""The firewall role's preflight: every source the rules would name is an IP address or network.

The rule set itself is loaded and exercised in molecule's default scenario (SSH first, the
published HTTPS port reachable from the allowed address only).
"""

import pytest

LOCAL = {"localhost": {}}
MONITORING = {"mon1": {"aicost_host_address": "10.20.0.10"}}


def test_sources_from_the_inventory_addresses_pass(run_role_tasks) -> None:
    variables = {"firewall_ssh_sources": ["10.0.0.0/8", "2001:db8::/32"]}
    groups = {"monitoring": MONITORING, "node_exporters": LOCAL, "log_agents": MONITORING}
    result = run_role_tasks("firewall", "preflight", variables, groups=groups)
    assert result.returncode == 0, result.stdout


def test_a_monitoring_host_known_by_name_only_is_refused(run_role_tasks) -> None:
    groups = {"monitoring": {"mon1.example.internal": {}}, "node_exporters": LOCAL}
    result = run_role_tasks("firewall", "preflight", {}, groups=groups)
    assert result.returncode != 0
    says = "not ['mon1.example.internal']: set aicost_host_address"
    assert says in " ".join(result.stdout.split()), result.stdout


@pytest.mark.parametrize("variables, says", [
    ({"firewall_ssh_sources": ["10.0.0.0/8\n  tcp dport 1-65535 accept"]}, "Firewall sources are"),
    ({"firewall_extra_rules": [{"port": 8443, "protocol": "sctp"}]}, "a protocol of tcp or udp"),
    ({"firewall_extra_rules": [{"port": 70000}]}, "port 70000 must be a TCP port"),
    ({"firewall_rollback_seconds": 5}, "firewall_rollback_seconds is at least 30"),
])  # fmt: skip
def test_the_preflight_refuses(run_role_tasks, variables: dict, says: str) -> None:
    groups = {"monitoring": MONITORING, "node_exporters": LOCAL}
    result = run_role_tasks("firewall", "preflight", variables, groups=groups)
    assert result.returncode != 0
    assert says in " ".join(result.stdout.split()), result.stdout


def test_swarm_mode_opens_the_swarm_to_the_swarm_hosts_by_address(run_role_tasks) -> None:
    groups = {"monitoring": MONITORING, "node_exporters": {"app1.example.internal": {}}}
    compose = run_role_tasks("firewall", "preflight", {}, groups=groups)
    assert compose.returncode == 0, compose.stdout
    swarm = run_role_tasks("firewall", "preflight", {"stack_mode": "swarm"}, groups=groups)
    assert swarm.returncode != 0
    assert "not ['app1.example.internal']" in " ".join(swarm.stdout.split()), swarm.stdout
