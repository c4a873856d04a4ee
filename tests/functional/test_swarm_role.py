"""The swarm role on three Debian 13 test VMs: check mode before there is a swarm, one manager
and two workers formed from the inventory with the tokens never printed, the inventory's
labels and roles, a second run that changes nothing, and a host that leaves the inventory:
reported, then drained and removed when asked."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playbook import collections_path, recap, run_playbook
from swarmstack import inventory
from testvm import TEST_NETWORK, install_engine, sh, systemd_vm

PLAYBOOK = """
- hosts: all
  gather_facts: false
  roles: [aicost.monitoring.swarm]
"""

Converge = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="module")
def vms() -> Iterator[list[str]]:
    with ExitStack() as stack:
        names = [stack.enter_context(systemd_vm(f"sw{index}", TEST_NETWORK)) for index in range(3)]
        for name in names:
            install_engine(name)
        yield names


@pytest.fixture(scope="module")
def converge(vms: list[str], tmp_path_factory: pytest.TempPathFactory) -> Converge:
    workdir = tmp_path_factory.mktemp("swarm-role")
    (workdir / "play.yml").write_text(PLAYBOOK)
    collections = collections_path(workdir / "collections")

    def run(*extra: str, workers: list[str] | None = None) -> subprocess.CompletedProcess:
        hosts = Path(workdir / "hosts.yml")
        hosts.write_text(inventory(vms, vms[1:] if workers is None else workers))
        return run_playbook(workdir / "play.yml", collections, "-i", str(hosts), *extra)

    return run


def nodes(manager: str) -> dict[str, dict]:
    """The swarm's nodes as the manager sees them, by the inventory host they carry."""
    ids = sh("docker", "exec", manager, "docker", "node", "ls", "-q").split()
    inspected = json.loads(sh("docker", "exec", manager, "docker", "node", "inspect", *ids))
    return {node["Spec"]["Labels"].get("aicost.inventory-host", node["ID"]): node
            for node in inspected}  # fmt: skip


def swarm_state(vm: str) -> str:
    return sh("docker", "exec", vm, "docker", "info", "--format",
              "{{.Swarm.LocalNodeState}}").strip()  # fmt: skip


def test_check_mode_forms_nothing(vms: list[str], converge: Converge) -> None:
    result = converge("--check")
    assert result.returncode == 0, result.stdout[-4000:]
    assert [swarm_state(vm) for vm in vms] == ["inactive"] * 3


def test_two_managers_are_refused_before_anything_changes(vms, converge: Converge) -> None:
    result = converge("-e", json.dumps({"swarm_managers_group": "node_exporters"}))
    assert result.returncode != 0
    assert "odd number of managers" in result.stdout
    assert [swarm_state(vm) for vm in vms] == ["inactive"] * 3


def test_the_inventory_forms_one_manager_and_two_workers(vms, converge: Converge) -> None:
    result = converge("-v")
    assert result.returncode == 0, result.stdout[-4000:]
    manager = vms[0]
    formed = nodes(manager)
    assert sorted(formed) == sorted(vms)
    assert formed[manager]["Spec"]["Role"] == "manager"
    assert formed[manager]["ManagerStatus"]["Leader"] is True
    assert [formed[vm]["Spec"]["Role"] for vm in vms[1:]] == ["worker", "worker"]
    assert all(node["Status"]["State"] == "ready" for node in formed.values())
    assert formed[manager]["Spec"]["Labels"]["aicost.timescaledb"] == "true"
    assert "aicost.timescaledb" not in formed[vms[1]]["Spec"]["Labels"]
    for role in ("worker", "manager"):
        token = sh("docker", "exec", manager, "docker", "swarm", "join-token", "-q", role)
        assert token.strip() not in result.stdout

    again = converge()
    assert again.returncode == 0, again.stdout[-4000:]
    assert "changed=0" in recap(again.stdout), recap(again.stdout)


def test_a_host_that_left_the_inventory_goes_only_when_asked(vms, converge) -> None:
    manager, leaving = vms[0], vms[2]
    reported = converge(workers=vms[1:2])
    assert reported.returncode == 0, reported.stdout[-4000:]
    assert "no longer" in reported.stdout and "swarm_remove_absent_nodes" in reported.stdout
    assert leaving in nodes(manager)

    removed = converge("-e", "swarm_remove_absent_nodes=true", workers=vms[1:2])
    assert removed.returncode == 0, removed.stdout[-4000:]
    assert sorted(nodes(manager)) == sorted(vms[:2])
