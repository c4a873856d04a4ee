"""The timescaledb role's preflight, run for real by ansible-playbook on localhost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.import_role:
        name: aicost.monitoring.timescaledb
        tasks_from: preflight
"""


def run_preflight(tmp_path: Path, *extra_vars: str) -> subprocess.CompletedProcess:
    link = tmp_path / "ansible_collections" / "aicost" / "monitoring"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO)
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PLAYBOOK)
    arguments = [item for var in extra_vars for item in ("-e", var)]
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c",
         "local", str(playbook), *arguments],
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path)),
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_defaults_pass(tmp_path: Path) -> None:
    completed = run_preflight(tmp_path)
    assert completed.returncode == 0, completed.stdout[-2000:]


@pytest.mark.parametrize("role_var", ["timescaledb_writer_role", "timescaledb_reader_role"])
def test_the_superuser_is_refused_as_app_role(tmp_path: Path, role_var: str) -> None:
    completed = run_preflight(tmp_path, role_var + "=admin", "timescaledb_superuser=admin")
    assert completed.returncode != 0
    assert "must not be timescaledb_superuser" in completed.stdout
