"""Swarm mode: ingest throughput with 1 and 2 replicas of the cost monitor, and failover time.

    make setup collection-link images   # the test VM image and the local image registry
    python benchmarks/swarm.py [--seconds 10] [--rounds 3] [--clients 8]

Three fresh systemd test VMs form a swarm and get the stack from site.yml with
stack_mode=swarm (tests/support/swarmstack.py: one manager, which is the monitoring host with
TimescaleDB, and two workers). Rounds alternate between 1 and 2 replicas (`docker service
scale`): the same clients post batches of 500 records to the app's port on the nodes that run
a replica (host mode, as there is no routing mesh here), and every answer comes after the
commit. The figure is records/s with 2 replicas beside 1 in the same run. All VMs share this
machine's cores with the one database, so the ratio says what a second replica adds when the
database and the CPU are shared, not what a second machine would.

Then failover: a client posts to the replica on one node while Docker is stopped on the other
replica's node; the time until Swarm runs the second replica again elsewhere, and the client's
failed requests. Prints, never fails on the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "tests" / "support"))
from load import Load  # noqa: E402
from playbook import collections_path, run_playbook  # noqa: E402
from swarmstack import TOKEN, address, inventory, running_tasks  # noqa: E402
from testvm import TEST_NETWORK, install_engine, sh, systemd_vm  # noqa: E402

BATCH = 500


def body(project: str) -> bytes:
    records = [{"provider": "openai", "model": ["gpt-4.1", "gpt-4.1-mini"][index % 2],
                "project": project, "input_tokens": 1000 + index, "output_tokens": 100}
               for index in range(BATCH)]  # fmt: skip
    return json.dumps(records).encode()


def scale(vms: list[str], replicas: int) -> list[str]:
    """Scales the app and waits; the addresses of the nodes that run its replicas."""
    sh("docker", "exec", vms[0], "docker", "service", "scale", "--detach",
       f"aicost_cost-monitor={replicas}")  # fmt: skip
    deadline = time.monotonic() + 120
    while len(nodes := running_tasks(vms, "cost-monitor")) != replicas:
        if time.monotonic() > deadline:
            raise SystemExit(f"the app did not reach {replicas} replicas: {nodes}")
        time.sleep(1)
    time.sleep(5)  # past the start period: both replicas take requests
    return [address(vm) for vm in sorted(set(nodes.values()))]


def failover(vms: list[str]) -> tuple[float, int, int]:
    replicas = running_tasks(vms, "cost-monitor")
    stopped = next(vm for vm in vms[1:] if vm in replicas.values())
    survivor = next(vm for vm in replicas.values() if vm != stopped)
    load = Load(8080, body("failover"), BATCH, 2, hosts=(address(survivor),), token=TOKEN)
    client = threading.Thread(target=load.run, args=(60.0,))
    client.start()
    started = time.monotonic()
    sh("docker", "exec", stopped, "systemctl", "stop", "docker.socket", "docker.service")
    try:
        moved = float("nan")
        while time.monotonic() - started < 180:
            now = running_tasks(vms, "cost-monitor")
            if len(now) == 2 and stopped not in now.values():
                moved = time.monotonic() - started
                break
            time.sleep(0.5)
        client.join()
    finally:
        sh("docker", "exec", stopped, "systemctl", "start", "docker.service")
    return moved, load.accepted // BATCH, load.failed // BATCH


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    options = parser.parse_args()

    with ExitStack() as stack, tempfile.TemporaryDirectory() as workdir:
        vms = [stack.enter_context(systemd_vm(f"bsw{index}", TEST_NETWORK)) for index in range(3)]
        for vm in vms:
            install_engine(vm)
        hosts = Path(workdir) / "hosts.yml"
        hosts.write_text(inventory(vms, vms[1:], stack=True))
        started = time.monotonic()
        deployed = run_playbook(REPO / "playbooks/site.yml", collections_path(Path(workdir)),
                                "-i", str(hosts))  # fmt: skip
        if deployed.returncode != 0:
            print(deployed.stdout[-4000:])
            return 1
        print(f"site.yml onto a fresh 3-node swarm: {time.monotonic() - started:.0f} s")

        rates: dict[int, list[float]] = {1: [], 2: []}
        payload = body("bench")
        for _ in range(options.rounds):
            for replicas in (1, 2):
                nodes = scale(vms, replicas)
                load = Load(8080, payload, BATCH, options.clients, hosts=tuple(nodes), token=TOKEN)
                rates[replicas].append(load.run(options.seconds))
                print(f"  {replicas} replica(s) on {len(nodes)} node(s): "
                      f"{rates[replicas][-1]:,.0f} records/s, {load.failed} failed")  # fmt: skip
        one, two = (statistics.median(rates[count]) for count in (1, 2))
        print(f"ingest, {options.clients} clients, batches of {BATCH}, committed before the "
              f"answer: 2 replicas {two:,.0f} records/s vs 1 replica {one:,.0f} records/s: "
              f"ratio {two / one:.2f} (median of {options.rounds} rounds each)")  # fmt: skip

        moved, accepted, failed = failover(vms)
        print(f"failover: Docker stopped on a worker; its replica ran on another node after "
              f"{moved:.1f} s; the client posting to the other replica: {accepted} requests "
              f"accepted, {failed} failed")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
