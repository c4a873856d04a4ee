"""Systemd test VMs (tests/images/vm): Debian 13 containers with their own init and, once a
test installs it, their own Docker engine; the stand-in for a real VM (see the README)."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator

VM_IMAGE = "aicost-test/vm:trixie"
TEST_NETWORK = "aicost-test"  # where the test image registry runs (tests/images/build.sh)


def sh(*argv: str, input_bytes: bytes | None = None) -> str:
    completed = subprocess.run(argv, input=input_bytes, capture_output=True, check=False)
    if completed.returncode != 0:
        raise AssertionError(f"{argv[:4]} failed: {completed.stderr.decode()[-2000:]}")
    return completed.stdout.decode()


@contextlib.contextmanager
def systemd_vm(prefix: str, network: str | None = None) -> Iterator[str]:
    """A running VM (its name) whose systemd has finished booting; removed on exit."""
    name = f"{prefix}-vm-{secrets.token_hex(4)}"
    # This sandbox cannot grant CAP_SYS_RESOURCE, so --privileged fails: all other caps.
    sh("docker", "run", "-d", "--name", name, "--hostname", name,
       *(["--network", network] if network else []),
       "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
       "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
       "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
       "--tmpfs", "/run", "--tmpfs", "/run/lock", "-v", f"{name}-docker:/var/lib/docker",
       VM_IMAGE, "/lib/systemd/systemd")  # fmt: skip
    try:
        sh("docker", "exec", name, "sh", "-c",
           "until systemctl is-system-running --wait >/dev/null 2>&1 ||"
           " systemctl is-system-running | grep -q degraded; do sleep 1; done")  # fmt: skip
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", f"{name}-docker"], capture_output=True,
                       check=False)  # fmt: skip


def install_engine(vm: str, *images: str, packages: tuple[str, ...] = ()) -> None:
    """Debian's Docker engine and compose in the VM, and these images of this machine loaded."""
    sh("docker", "exec", vm, "sh", "-c",
       "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
       " docker.io docker-cli docker-compose " + " ".join(packages))  # fmt: skip
    for image in images:
        saved = subprocess.run(["docker", "save", image], capture_output=True, check=True).stdout
        sh("docker", "exec", "-i", vm, "docker", "load", "-q", input_bytes=saved)
