"""Run this checkout's roles against test VMs with ansible-playbook, as the functional tests do."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"


def collections_path(tmp_root: Path) -> Path:
    """A collections tree whose aicost/monitoring is this checkout (ansible.cfg's layout)."""
    link = tmp_root / "ansible_collections" / "aicost" / "monitoring"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(REPO)
    return tmp_root


def vm_inventory(vm: str) -> list[str]:
    """ansible-playbook options that reach one test VM through `docker exec`."""
    return ["-i", f"{vm},", "-c", "community.docker.docker",
            "-e", "ansible_python_interpreter=/usr/bin/python3"]  # fmt: skip


def run_playbook(
    playbook: Path, collections: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections))
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), str(playbook), *options],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def recap(output: str) -> str:
    """The last PLAY RECAP line of a run's output (colours removed)."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    lines = [line for line in plain.splitlines() if " ok=" in line and "failed=" in line]
    assert lines, output[-3000:]
    return lines[-1]
