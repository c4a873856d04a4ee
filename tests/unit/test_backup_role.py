"""The backup role's preflight: targets, compression and paths are refused before anything runs.

The program itself is under test in tests/unit/plugins/module_utils (sets, copies, snapshot),
and molecule's default scenario runs the timer's unit, the copy over SSH and the restores.
"""

import pytest

TARGETS = {"backup_targets": {"vault": {}}}


def test_a_target_of_the_inventory_and_zstd_pass(run_role_tasks) -> None:
    result = run_role_tasks("backup", "preflight", {"backup_compression": "zstd:3"}, groups=TARGETS)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("variables, says", [
    ({"backup_targets": ["nowhere"]}, "hosts of the inventory other than this one (nowhere)"),
    ({"backup_targets": ["localhost"]}, "other than this one (localhost)"),
    ({"backup_compression": "brotli"}, "backup_compression a gzip level 0 to 9"),
    ({"backup_compression": "zstd:3 --file=/etc/passwd"}, "backup_compression a gzip level 0 to 9"),
    ({"backup_target_dir": "relative/dir"}, "backup_target_dir an absolute path"),
    ({"backup_target_user": "root; rm"}, "backup_target_user a user name"),
])  # fmt: skip
def test_the_preflight_refuses(run_role_tasks, variables: dict, says: str) -> None:
    result = run_role_tasks("backup", "preflight", variables, groups=TARGETS)
    assert result.returncode != 0
    assert says in " ".join(result.stdout.split()), result.stdout
