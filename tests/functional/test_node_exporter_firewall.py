"""node_exporter_firewall on a Debian 13 test VM that is an application host: node-exporter is
published on the VM's scrape address, and only the allowed sources reach it, through rules
in Docker's DOCKER-USER chain that survive a restart of Docker and go away when turned off.

This machine scrapes the VM from outside, over Docker's default bridge: its address there
(the bridge's gateway) is the source the VM sees.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from playbook import collections_path, recap, run_playbook
from testvm import install_engine, sh, systemd_vm

IMAGE = "aicost-test/node-exporter:trixie"
ELSEWHERE = "203.0.113.7"  # TEST-NET-3: a monitoring host that is not this machine
PLAYBOOK = """
- hosts: node_exporters
  gather_facts: false
  vars:
    stack_image_registry: docker.io
    node_exporter_image: aicost-test/node-exporter
    node_exporter_version: trixie
  tasks:
    - ansible.builtin.import_role: {name: aicost.monitoring.node_exporter, tasks_from: preflight}
    - ansible.builtin.import_role: {name: aicost.monitoring.stack}
    - ansible.builtin.import_role: {name: aicost.monitoring.node_exporter}
    - ansible.builtin.import_role: {name: aicost.monitoring.stack, tasks_from: up}
"""

Converge = Callable[..., str]


@pytest.fixture(scope="module")
def vm() -> Iterator[str]:
    with systemd_vm("n") as name:
        install_engine(name, IMAGE)
        yield name


def vm_address(vm: str) -> str:
    return sh("docker", "inspect", "--format",
              "{{.NetworkSettings.IPAddress}}", vm).strip()  # fmt: skip


def this_machines_address(vm: str) -> str:
    return sh("docker", "inspect", "--format",
              "{{.NetworkSettings.Gateway}}", vm).strip()  # fmt: skip


@pytest.fixture(scope="module")
def converge(vm: str, tmp_path_factory: pytest.TempPathFactory) -> Converge:
    workdir = tmp_path_factory.mktemp("node-exporter-firewall")
    (workdir / "play.yml").write_text(PLAYBOOK)
    collections = collections_path(workdir / "collections")

    def run(monitoring_address: str, *extra: str) -> str:
        inventory = {"all": {
            "vars": {"ansible_connection": "community.docker.docker",
                     "ansible_python_interpreter": "/usr/bin/python3"},
            "children": {
                "monitoring": {"hosts": {"mon1": {"aicost_host_address": monitoring_address}}},
                "node_exporters": {"hosts": {vm: {"aicost_host_address": vm_address(vm)}}},
            }}}  # fmt: skip
        (workdir / "hosts.json").write_text(json.dumps(inventory))
        completed = run_playbook(
            workdir / "play.yml", collections, "-i", str(workdir / "hosts.json"), *extra
        )
        assert completed.returncode == 0, completed.stdout[-4000:]
        return completed.stdout

    return run


def scrape(vm: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{vm_address(vm)}:9100/metrics", timeout=3) as answer:
            return answer.status == 200
    except OSError:
        return False


def firewall_chain(vm: str) -> str:
    return subprocess.run(["docker", "exec", vm, "iptables", "-S", "AICOST-NODE-EXPORTER"],
                          capture_output=True, text=True, check=False).stdout  # fmt: skip


def test_published_on_the_scrape_address_only(vm: str, converge: Converge) -> None:
    converge(this_machines_address(vm))
    listening = sh("docker", "exec", vm, "ss", "-Htln")
    assert f"{vm_address(vm)}:9100 " in listening
    assert "0.0.0.0:9100 " not in listening and "*:9100 " not in listening
    assert scrape(vm)


def test_only_the_monitoring_hosts_get_through(vm: str, converge: Converge) -> None:
    on = ("-e", "node_exporter_firewall=true")
    first = converge(this_machines_address(vm), *on)
    assert "changed=0" not in recap(first)
    assert scrape(vm)
    assert " changed=0 " in recap(converge(this_machines_address(vm), *on))
    assert " changed=0 " in recap(converge(this_machines_address(vm), *on, "--check"))

    converge(ELSEWHERE, *on)
    assert f"-s {ELSEWHERE}/32" in firewall_chain(vm)
    assert not scrape(vm)

    sh("docker", "exec", vm, "systemctl", "restart", "docker")
    sh("docker", "exec", vm, "sh", "-c",
       "until docker compose -f /opt/aicost/compose.yml ps --format '{{.Status}}'"
       " | grep -q healthy; do sleep 1; done")  # fmt: skip
    assert not scrape(vm), "the rules must survive a restart of Docker"

    converge(this_machines_address(vm), *on)
    assert scrape(vm)


def test_turning_it_off_removes_the_rules(vm: str, converge: Converge) -> None:
    converge(ELSEWHERE, "-e", "node_exporter_firewall=true")
    assert not scrape(vm)
    converge(ELSEWHERE)
    assert firewall_chain(vm) == ""
    assert "AICOST" not in sh("docker", "exec", vm, "iptables", "-S", "DOCKER-USER")
    assert scrape(vm)
