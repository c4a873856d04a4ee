"""The swarm-mode stack on test VMs, shared by the functional test and the benchmark: the
inventory (one manager that is the monitoring host, the others workers) and what the manager
says about the stack's tasks."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import yaml
from testvm import TEST_NETWORK, sh

REPO = Path(__file__).resolve().parents[2]
TOKEN = "swarm-test-token-0123456789abcdef"
# The molecule scenarios' test settings (stand-in images from the test registry), without the
# parts that need molecule's webhook receiver or firewall checks.
MOLECULE_VARS = yaml.safe_load((REPO / "molecule/shared/group_vars/all.yml").read_text())
STACK_VARS = {
    key: value
    for key, value in MOLECULE_VARS.items()
    if not key.startswith(("firewall_", "alertmanager_r", "__", "backup_"))
} | {
    "cost_monitor_build_wheels_dir": str(REPO / ".cache/app-wheels"),
    "stack_mode": "swarm",
    # This machine's kernel has no IPVS (routing mesh, virtual IPs) and passes no IPsec
    # between the test VMs: ports in host mode, DNS round robin, a plain overlay network.
    "stack_swarm_publish_mode": "host",
    "stack_swarm_endpoint_mode": "dnsrr",
    "stack_swarm_network_encrypted": False,
    # Records are posted to the app's port on each node (the proxy is tested in molecule).
    "proxy_enabled": False,
    "cost_monitor_publish_address": "0.0.0.0",
    "cost_monitor_replicas": 2,
    "cost_monitor_ingest_tokens": [TOKEN],
}


def inventory(vms: list[str], workers: list[str], stack: bool = False) -> str:
    """vms[0] manages the swarm and is the monitoring host; the workers are node_exporters
    (with the stack's settings, every VM is)."""
    manager = vms[0]
    exporters = ([manager] if stack else []) + workers
    hosts = {
        "all": {
            "vars": {
                "ansible_connection": "community.docker.docker",
                "ansible_python_interpreter": "/usr/bin/python3",
            }
            | (STACK_VARS if stack else {}),
            "children": {
                "swarm_managers": {"hosts": {manager: {}}},
                "monitoring": {
                    "hosts": {manager: {"swarm_node_labels": {"aicost.timescaledb": "true"}}}
                },
                "node_exporters": {"hosts": {name: {} for name in exporters}},
            },
        }
    }
    return json.dumps(hosts)


@functools.cache
def address(vm: str) -> str:
    template = f'{{{{(index .NetworkSettings.Networks "{TEST_NETWORK}").IPAddress}}}}'
    return sh("docker", "inspect", "--format", template, vm).strip()


def running_tasks(vms: list[str], service: str) -> dict[str, str]:
    """Task name -> the VM of its node, for the service's running tasks (the manager asked)."""
    lines = sh("docker", "exec", vms[0], "docker", "service", "ps", f"aicost_{service}",
               "--filter", "desired-state=running", "--format",
               "{{.Name}} {{.Node}} {{.CurrentState}}").splitlines()  # fmt: skip
    hostnames = {hostname(vm): vm for vm in vms}
    return {line.split()[0]: hostnames.get(line.split()[1], line.split()[1])
            for line in lines if " Running " in line}  # fmt: skip


def stored(manager: str, project: str) -> int:
    """Rows of the project in the usage table, counted in the manager's database."""
    query = f"SELECT count(*) FROM llm_consumption WHERE project = '{project}'"
    return int(sh("docker", "exec", manager, "docker", "exec", "aicost-timescaledb-1", "psql",
                  "-U", "postgres", "-d", "aicost", "-tAc", query).strip())  # fmt: skip


@functools.cache
def hostname(vm: str) -> str:
    return sh("docker", "exec", vm, "hostname").strip()
