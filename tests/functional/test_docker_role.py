"""The docker role on a fresh Debian 13 test VM: check mode before anything is installed, a
converge, and a daemon.json that dockerd refuses, which must fail the run before it lands and
leave the engine running on its old configuration."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator

import pytest
from playbook import collections_path, run_playbook, vm_inventory
from testvm import sh, systemd_vm

PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars: {docker_install_source: distribution}
  roles: [aicost.monitoring.docker]
"""

Converge = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="module")
def vm() -> Iterator[str]:
    with systemd_vm("d") as name:
        yield name


@pytest.fixture(scope="module")
def converge(vm: str, tmp_path_factory: pytest.TempPathFactory) -> Converge:
    workdir = tmp_path_factory.mktemp("docker-role")
    (workdir / "play.yml").write_text(PLAYBOOK)
    collections = collections_path(workdir / "collections")

    def run(*extra: str) -> subprocess.CompletedProcess:
        return run_playbook(workdir / "play.yml", collections, *vm_inventory(vm), *extra)

    return run


def daemon_json(vm: str) -> dict:
    return json.loads(sh("docker", "exec", vm, "cat", "/etc/docker/daemon.json"))


def engine_state(vm: str) -> str:
    return subprocess.run(["docker", "exec", vm, "systemctl", "is-active", "docker"],
                          capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip


def options(**daemon_options) -> tuple[str, str]:
    return "-e", json.dumps({"docker_daemon_options": daemon_options})


def test_check_mode_on_a_fresh_host(converge: Converge) -> None:
    result = converge("--check")
    assert result.returncode == 0, result.stdout[-4000:]


def test_converge_then_a_refused_option_leaves_docker_running(vm: str, converge) -> None:
    first = converge()
    assert first.returncode == 0, first.stdout[-4000:]
    written = daemon_json(vm)
    assert written["live-restore"] is True
    assert "has no --validate" not in first.stdout  # Debian 13 ships dockerd 26

    refused = converge(*options(**{"no-such-option": True}))
    assert refused.returncode != 0
    assert "no-such-option" in refused.stdout and "failed to validate" in refused.stdout
    assert daemon_json(vm) == written
    assert engine_state(vm) == "active"

    wrong_type = converge(*options(**{"live-restore": "yes"}))
    assert wrong_type.returncode != 0
    assert daemon_json(vm) == written
    assert engine_state(vm) == "active"


def test_an_accepted_option_lands_and_the_engine_restarts_with_it(vm: str, converge) -> None:
    result = converge(*options(**{"max-concurrent-downloads": 4}))
    assert result.returncode == 0, result.stdout[-4000:]
    assert daemon_json(vm)["max-concurrent-downloads"] == 4
    assert engine_state(vm) == "active"
    info = sh("docker", "exec", vm, "docker", "info", "--format", "{{json .}}")
    assert json.loads(info)["LiveRestoreEnabled"] is True
