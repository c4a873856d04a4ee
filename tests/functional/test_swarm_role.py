"""Swarm mode on three Debian 13 test VMs. The swarm role: check mode before there is a swarm,
one manager and two workers formed from the inventory with the tokens never printed, the
inventory's labels and roles, a second run that changes nothing. Then site.yml with
stack_mode=swarm on the same swarm: the cost monitor's two replicas on two nodes, records posted
to either stored once, every replica and every node's exporter scraped, a second converge that
changes nothing, a stopped worker whose replica Swarm starts elsewhere while the other answers.
Last, a host that leaves the inventory: reported, then drained and removed when asked."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playbook import REPO, collections_path, recap, run_playbook
from swarmstack import TOKEN, address, inventory, running_tasks, stored
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


@pytest.fixture(scope="module")
def deploy(vms: list[str], tmp_path_factory: pytest.TempPathFactory) -> Converge:
    workdir = tmp_path_factory.mktemp("swarm-stack")
    collections = collections_path(workdir / "collections")
    (workdir / "hosts.yml").write_text(inventory(vms, vms[1:], stack=True))

    def run(*extra: str) -> subprocess.CompletedProcess:
        return run_playbook(REPO / "playbooks/site.yml", collections,
                            "-i", str(workdir / "hosts.yml"), *extra)  # fmt: skip

    return run


def post(client: str, vm: str, records: list[dict]) -> int:
    """POSTs records to the cost monitor's port on a VM, from the client VM; the HTTP status."""
    script = (
        "import json, sys, urllib.request\n"
        f"request = urllib.request.Request('http://{address(vm)}:8080/v1/ingest', "
        "data=sys.stdin.buffer.read(), method='POST', headers={'Content-Type': "
        f"'application/json', 'Authorization': 'Bearer {TOKEN}'}})\n"
        "try:\n    print(urllib.request.urlopen(request, timeout=5).status)\n"
        "except Exception as error:\n    print(getattr(error, 'code', 0))\n"
    )
    command = ["docker", "exec", "-i", client, "python3", "-c", script]
    out = subprocess.run(command, input=json.dumps(records), capture_output=True, text=True,
                         check=False)  # fmt: skip
    return int(out.stdout.strip() or 0)


def prometheus_up(manager: str, job: str) -> list[str]:
    url = f"http://127.0.0.1:9090/api/v1/query?query=up{{job=%22{job}%22}}%3D%3D1"
    script = f"import urllib.request; print(urllib.request.urlopen('{url}').read().decode())"
    body = json.loads(sh("docker", "exec", manager, "python3", "-c", script))
    return sorted(result["metric"]["instance"] for result in body["data"]["result"])


def test_site_deploys_the_stack_onto_the_swarm(vms, deploy: Converge) -> None:
    manager = vms[0]
    result = deploy()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    replicas = running_tasks(vms, "cost-monitor")
    assert len(replicas) == 2 and len(set(replicas.values())) == 2, replicas
    assert sorted(running_tasks(vms, "node-exporter").values()) == sorted(vms)
    assert TOKEN not in result.stdout

    run = f"swarm-{uuid.uuid4().hex[:8]}"
    for index, vm in enumerate(sorted(set(replicas.values()))):
        records = [{"provider": "openai", "model": "gpt-4.1", "project": run,
                    "input_tokens": 100 + index, "output_tokens": 10}] * 3  # fmt: skip
        assert post(manager, vm, records) in (200, 202)
    deadline = time.monotonic() + 60
    while stored(manager, run) < 6 and time.monotonic() < deadline:
        time.sleep(2)
    assert stored(manager, run) == 6

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        scraped = (prometheus_up(manager, "cost-monitor"), prometheus_up(manager, "node"))
        if (len(scraped[0]), len(scraped[1])) == (2, 3):
            break
        time.sleep(3)
    assert (len(scraped[0]), len(scraped[1])) == (2, 3), scraped

    again = deploy()
    assert again.returncode == 0, again.stdout[-6000:]
    summary = again.stdout.rsplit("PLAY RECAP", 1)[-1]
    hosts = [line for line in summary.splitlines() if "ok=" in line]
    assert len(hosts) == 3 and all(" changed=0 " in line for line in hosts), hosts


def configs(manager: str) -> list[str]:
    """The names of the Swarm configs the app's service mounts."""
    spec = sh("docker", "exec", manager, "docker", "service", "inspect", "aicost_cost-monitor",
              "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Configs}}")  # fmt: skip
    return sorted(config["ConfigName"] for config in json.loads(spec))


class Client:
    """Posts a record every half second from this machine to a node that runs a replica, as a
    client that looks the replicas up (DNS round robin) does: the next one when one fails."""

    def __init__(self, vms: list[str], project: str) -> None:
        self.vms, self.project = vms, project
        self.sent, self.failed, self.running = 0, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._post)

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _post(self) -> None:
        body = json.dumps([{"provider": "openai", "model": "gpt-4.1", "project": self.project,
                            "input_tokens": 1}]).encode()  # fmt: skip
        while not self._stop.is_set():
            nodes = sorted(set(running_tasks(self.vms, "cost-monitor").values()))
            self.running.append(len(nodes))
            for vm in nodes:
                request = urllib.request.Request(
                    f"http://{address(vm)}:8080/v1/ingest", data=body, method="POST",
                    headers={"Content-Type": "application/json",
                             "Authorization": f"Bearer {TOKEN}"})  # fmt: skip
                try:
                    if urllib.request.urlopen(request, timeout=5).status in (200, 202):
                        self.sent += 1
                        break
                except OSError:
                    continue
            else:
                self.failed += 1
            time.sleep(0.5)


def test_a_changed_setting_rolls_out_one_replica_at_a_time(vms, deploy: Converge) -> None:
    manager = vms[0]
    before = configs(manager)
    project = f"rolling-{uuid.uuid4().hex[:8]}"
    with Client(vms, project) as client:
        # The app's settings live on the monitoring host: it alone deploys the change.
        result = deploy("-e", "cost_monitor_log_level=DEBUG", "--limit", manager)
        time.sleep(2)
    assert result.returncode == 0, result.stdout[-6000:]
    assert configs(manager) != before
    state = sh("docker", "exec", manager, "docker", "service", "inspect", "aicost_cost-monitor",
               "--format", "{{.UpdateStatus.State}}").strip()  # fmt: skip
    assert state == "completed"
    assert client.failed == 0 and client.sent > 10, (client.sent, client.failed)
    assert min(client.running) == 2, client.running
    deadline = time.monotonic() + 30
    while stored(manager, project) < client.sent and time.monotonic() < deadline:
        time.sleep(1)
    assert stored(manager, project) == client.sent


def test_a_stopped_worker_loses_no_ingest_and_its_replica_moves(vms) -> None:
    manager = vms[0]
    replicas = running_tasks(vms, "cost-monitor")
    stopped = next(vm for vm in vms[1:] if vm in replicas.values())
    survivor = next(vm for vm in replicas.values() if vm != stopped)
    started = time.monotonic()
    sh("docker", "exec", stopped, "systemctl", "stop", "docker.socket", "docker.service")
    try:
        run = f"failover-{uuid.uuid4().hex[:8]}"
        record = {"provider": "openai", "model": "gpt-4.1", "project": run, "input_tokens": 1}
        assert post(manager, survivor, [record]) in (200, 202)
        moved = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            now = running_tasks(vms, "cost-monitor")
            if len(now) == 2 and stopped not in now.values():
                moved = time.monotonic() - started
                break
            time.sleep(2)
        assert moved is not None, running_tasks(vms, "cost-monitor")
        print(f"failover: the stopped worker's replica ran elsewhere again after {moved:.0f} s")
        deadline = time.monotonic() + 30
        while stored(manager, run) < 1 and time.monotonic() < deadline:
            time.sleep(1)
        assert stored(manager, run) == 1
    finally:
        sh("docker", "exec", stopped, "systemctl", "start", "docker.service")


def test_a_host_that_left_the_inventory_goes_only_when_asked(vms, converge) -> None:
    manager, leaving = vms[0], vms[2]
    reported = converge(workers=vms[1:2])
    assert reported.returncode == 0, reported.stdout[-4000:]
    assert "no longer" in reported.stdout and "swarm_remove_absent_nodes" in reported.stdout
    assert leaving in nodes(manager)

    removed = converge("-e", "swarm_remove_absent_nodes=true", workers=vms[1:2])
    assert removed.returncode == 0, removed.stdout[-4000:]
    assert sorted(nodes(manager)) == sorted(vms[:2])
