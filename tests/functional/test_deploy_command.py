"""The README's deploy command on a fresh VM, as a new user meets it.

A fresh Debian 13 test VM gets only a copy of the repository and the overrides an air-gapped
user must write (Docker from Debian, images through the local test registry). Then, as a
sudo user whose sudo asks for a password, after a failed `python3 -m venv` left a half-made
`.venv` behind: `./deploy`. It must install what is missing (python3-venv) through sudo,
repair the venv, ask for the become password and converge a healthy stack. Running it again
as root, and once more as that user, must change nothing.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playbook import recap
from testvm import TEST_NETWORK, sh, systemd_vm

REPO = Path(__file__).resolve().parents[2]
USER = "ops"
PASSWORD = "first-five-minutes"
CHECKOUT = f"/home/{USER}/aicost"
# The settings the test VMs need to pull the stand-in images (molecule's shared group_vars):
# Docker from Debian, the registry mirror, the image names and the services left out.
AIR_GAPPED = re.compile(
    r"^(docker_|stack_image_registry$|stack_render_only_services$|\w+_image$|\w+_version$)"
)
# Wheels for the app's image build, which cannot reach PyPI (tests/images/app-wheels.sh).
WHEELS = REPO / ".cache" / "app-wheels"
PROMPT = re.compile(rb"(?i)password[^\n]*: *$")


def air_gapped_overrides() -> str:
    shared = yaml.safe_load((REPO / "molecule" / "shared" / "group_vars" / "all.yml").read_text())
    overrides = {k: v for k, v in shared.items() if AIR_GAPPED.match(k)}
    overrides["cost_monitor_build_wheels_dir"] = f"{CHECKOUT}/.cache/app-wheels"
    return yaml.safe_dump(overrides)


def trust_this_machines_pypi_access(vm: str) -> None:
    """PyPI is reached through TLS that only this machine's CA store trusts: copy in its extra
    CA certificates and pip configuration, read at run time (never committed)."""
    extra_ca = Path("/usr/local/share/ca-certificates")
    for certificate in extra_ca.glob("**/*.crt") if extra_ca.is_dir() else []:
        target = f"{extra_ca}/{certificate.relative_to(extra_ca)}"
        sh("docker", "exec", vm, "mkdir", "-p", os.path.dirname(target))
        sh("docker", "cp", str(certificate), f"{vm}:{target}")
    sh("docker", "exec", vm, "update-ca-certificates")
    for config in (Path("/etc/pip.conf"), Path("/etc/xdg/pip")):
        if config.exists():
            sh("docker", "exec", vm, "mkdir", "-p", str(config.parent))
            sh("docker", "cp", str(config), f"{vm}:{config}")


def copy_checkout(vm: str) -> None:
    """The working tree's tracked and new files, as `git clone` would give them."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout  # fmt: skip
    existing = b"\0".join(f for f in files.split(b"\0") if f and (REPO / f.decode()).exists())
    archive = subprocess.run(
        ["tar", "-c", "--null", "-T", "-"], cwd=REPO, input=existing, capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    sh("docker", "exec", vm, "mkdir", "-p", CHECKOUT)
    sh("docker", "exec", "-i", vm, "tar", "-x", "-C", CHECKOUT, input_bytes=archive)
    sh("docker", "exec", vm, "mkdir", "-p", f"{CHECKOUT}/.cache")
    sh("docker", "cp", str(WHEELS), f"{vm}:{CHECKOUT}/.cache/app-wheels")


def in_terminal(argv: list[str], timeout: float = 900) -> tuple[int, str]:
    """Run a command on a terminal, answering every password prompt (sudo's, Ansible's)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output, answered_up_to = b"", 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = select.select([controller], [], [], 1)[0]
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            output += chunk
            if PROMPT.search(output[answered_up_to:]):
                os.write(controller, PASSWORD.encode() + b"\n")
                answered_up_to = len(output)
        elif process.poll() is not None:
            break
    else:
        process.kill()
    os.close(controller)
    return process.wait(), output.decode(errors="replace")


@pytest.fixture(scope="module")
def fresh_vm() -> Iterator[str]:
    with systemd_vm("f", network=TEST_NETWORK) as vm:
        sh("docker", "exec", vm, "sh", "-c",
           f"useradd --create-home --shell /bin/bash --groups sudo {USER}"
           f" && echo '{USER}:{PASSWORD}' | chpasswd")  # fmt: skip
        trust_this_machines_pypi_access(vm)
        copy_checkout(vm)
        sh("docker", "exec", "-i", vm, "sh", "-c",
           f"cat > {CHECKOUT}/inventories/local/group_vars/all/local.yml",
           input_bytes=air_gapped_overrides().encode())  # fmt: skip
        sh("docker", "exec", vm, "chown", "-R", f"{USER}:{USER}", CHECKOUT)
        yield vm


def test_the_readme_deploy_command_on_a_fresh_vm(fresh_vm, capsys):
    vm = fresh_vm
    missing = sh("docker", "exec", vm, "sh", "-c",
                 "dpkg-query -W -f='${Status}' python3-venv 2>/dev/null; command -v make;"
                 " test -e /usr/bin/docker && echo docker || true")  # fmt: skip
    assert "install ok installed" not in missing and "docker" not in missing, missing
    # What a first try without python3-venv leaves behind: .venv/bin/python without pip.
    half_made = subprocess.run(["docker", "exec", "-u", USER, "-w", CHECKOUT, vm,
                                "python3", "-m", "venv", ".venv"], capture_output=True,
                               check=False)  # fmt: skip
    assert half_made.returncode != 0
    sh("docker", "exec", vm, "test", "-x", f"{CHECKOUT}/.venv/bin/python")

    runs = []
    for who in (USER, "root", USER):
        started = time.monotonic()
        # The README's exact command, in the checkout, on a terminal (sudo reads it).
        status, output = in_terminal(["docker", "exec", "-it", "-u", who, "-w", CHECKOUT, vm,
                                      "./deploy"])  # fmt: skip
        runs.append((who, time.monotonic() - started, recap(output)))
        assert status == 0, output[-4000:]
        if who == USER and len(runs) == 1:
            assert "installing python3-venv" in output and "BECOME password" in output
    first = runs[0][2]
    assert " changed=0 " not in first and " failed=0 " in first, first
    for who, _seconds, line in runs[1:]:
        assert " changed=0 " in line and " failed=0 " in line, (who, line)

    compose = "cd /opt/aicost && docker compose "
    services = sh("docker", "exec", vm, "sh", "-c", compose + "config --services").split()
    states = sh("docker", "exec", vm, "sh", "-c",
                compose + "ps --all --format '{{.Service}} {{.State}} {{.Health}}'")  # fmt: skip
    assert sorted(states.splitlines()) == [f"{name} running healthy" for name in sorted(services)]
    assert "timescaledb" in services and "prometheus" in services
    with capsys.disabled():
        print("\n./deploy on a fresh VM: " + ", ".join(
            f"{run[0]} {run[1]:.0f} s" for run in runs))  # fmt: skip
