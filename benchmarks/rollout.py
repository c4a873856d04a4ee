"""Rollout wall time of playbooks/log_agents.yml to one and to three fresh application hosts.

    make setup collection-link images   # the test VM image and the local image registry
    python benchmarks/rollout.py

Four fresh systemd test VMs (tests/support/testvm.py) on the test network: the playbook rolls
node-exporter, cAdvisor and the log agent (Docker installed first) out to one of them, then to
the other three in one batch. The hosts of a batch run in parallel, so three hosts should take
little more than one; the target is 3 hosts <= 1.5x one host. Uses the molecule scenarios'
group_vars (Debian's Docker packages, the local registry, the agents rendered, not run).
Prints, never fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.support.testvm import TEST_NETWORK, systemd_vm  # noqa: E402


def write_inventory(directory: Path, hosts: list[str]) -> Path:
    (directory / "group_vars").symlink_to(REPO / "molecule" / "shared" / "group_vars")
    addresses = {
        vm["Name"].lstrip("/"): vm["NetworkSettings"]["Networks"][TEST_NETWORK]["IPAddress"]
        for vm in json.loads(subprocess.check_output(["docker", "inspect", *hosts]))
    }
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "community.docker.docker",
                "ansible_python_interpreter": "/usr/bin/python3",
                # No monitoring host here: the agents are given a Loki URL (rendered, not run).
                "log_agent_loki_url": "http://192.0.2.10:3101/loki/api/v1/push",
                "loki_agent_password": "not-a-real-password",
            },
            "children": {
                group: {"hosts": {host: {"aicost_host_address": addresses[host]} for host in hosts}}
                for group in ("node_exporters", "log_agents")
            },
        }
    }
    path = directory / "hosts.yml"
    path.write_text(json.dumps(inventory, indent=2))  # JSON is YAML
    return path


def rollout(hosts: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="aicost-rollout-") as directory:
        inventory = write_inventory(Path(directory), hosts)
        started = time.monotonic()
        completed = subprocess.run(
            ["ansible-playbook", "-i", str(inventory), str(REPO / "playbooks" / "log_agents.yml")],
            capture_output=True, text=True, check=False, cwd=REPO,
            # Pipelining, as ansible.cfg sets it for SSH, for the test VMs' docker connection.
            env={**os.environ, "MOLECULE_PROJECT_DIRECTORY": str(REPO), "ANSIBLE_PIPELINING": "1"},
        )  # fmt: skip
        elapsed = time.monotonic() - started
    if completed.returncode != 0:
        raise SystemExit(
            f"rollout to {hosts} failed:\n{completed.stdout[-3000:]}{completed.stderr[-2000:]}"
        )
    return elapsed


def main() -> None:
    with contextlib.ExitStack() as stack:
        vms = [stack.enter_context(systemd_vm("aicost-bench", TEST_NETWORK)) for _ in range(4)]
        one = rollout(vms[:1])
        three = rollout(vms[1:])
    print(f"rollout to 1 host:  {one:6.1f} s (baseline)")
    print(f"rollout to 3 hosts: {three:6.1f} s ({three / one:.2f}x; target <= 1.5x)")


if __name__ == "__main__":
    main()
