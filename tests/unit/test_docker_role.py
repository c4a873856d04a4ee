"""The docker role's preflight refuses daemon.json keys that stop the engine from starting."""

import pytest


@pytest.mark.parametrize("key", ["hosts", "containerd"])
def test_the_preflight_refuses_a_key_the_service_unit_sets_as_a_flag(run_role_tasks, key) -> None:
    result = run_role_tasks("docker", "preflight", {"docker_daemon_options": {key: "x"}})
    assert result.returncode != 0
    assert f"docker_daemon_options: {key} is set" in result.stdout, result.stdout


def test_the_preflight_accepts_other_daemon_options(run_role_tasks) -> None:
    result = run_role_tasks("docker", "preflight", {"docker_daemon_options": {"debug": True}})
    assert result.returncode == 0, result.stdout
