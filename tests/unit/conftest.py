"""Run a role's task file for real on this machine (connection local), in a scratch directory.

Role tests render templates with Ansible's own templating this way, then read what the role
wrote under `stack_dir`, which points into the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

COLLECTION_ROOT = Path(__file__).parents[2]

RoleRunner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def run_role_tasks(tmp_path: Path) -> RoleRunner:
    """run_role_tasks(role, tasks_from, variables, groups=..., check_mode=...) -> the result.

    `groups` maps inventory group names to {host: hostvars}; the play runs on `localhost`,
    which is in every group named (and in none by default).
    """
    collections = tmp_path / "collections" / "ansible_collections" / "aicost"
    collections.mkdir(parents=True)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "services").mkdir()
    (collections / "monitoring").symlink_to(COLLECTION_ROOT)

    def run(
        role: str,
        tasks_from: str,
        variables: dict,
        groups: dict[str, dict[str, dict]] | None = None,
        check_mode: bool = False,
    ) -> subprocess.CompletedProcess:
        inventory = {
            "all": {
                "hosts": {
                    "localhost": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                    }
                }
            }
        }
        inventory["all"]["children"] = {
            group: {"hosts": hosts} for group, hosts in (groups or {}).items()
        }
        playbook = [{
            "name": f"Run {role} {tasks_from}",
            "hosts": "localhost",
            "gather_facts": False,
            # Every service role runs after the stack role, whose defaults it reads.
            "vars_files": [str(COLLECTION_ROOT / "roles" / "stack" / "defaults" / "main.yml")],
            "tasks": [{"ansible.builtin.import_role": {
                "name": f"aicost.monitoring.{role}", "tasks_from": tasks_from}}],
        }]  # fmt: skip
        (tmp_path / "inventory.json").write_text(json.dumps(inventory))
        (tmp_path / "playbook.json").write_text(json.dumps(playbook))
        (tmp_path / "vars.json").write_text(json.dumps(variables))
        (tmp_path / "ansible.cfg").write_text("[defaults]\n")
        env = os.environ | {
            "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        }
        return subprocess.run(
            ["ansible-playbook", "-i", "inventory.json", "playbook.json", "-e", "@vars.json"]
            + (["--check"] if check_mode else []),
            cwd=tmp_path, env=env, capture_output=True, text=True, check=False)  # fmt: skip

    return run
