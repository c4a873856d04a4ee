"""The timescaledb role's fallback path on a systemd test VM: stack up, timescaledb_init,
host timers.

The VM (tests/images/vm) runs systemd and its own Docker engine; Debian's Apache-only
TimescaleDB image is loaded into it, so init must hand the view refreshes and the retention
to systemd timers, and those timers must really work. The production path (the timescale
license, jobs inside the database) is the molecule default scenario's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgcontainer import TIMESCALEDB_APACHE_IMAGE
from playbook import recap, run_playbook, vm_inventory
from testvm import install_engine, sh, systemd_vm

UNITS = (
    "refresh-llm-consumption-hourly",
    "refresh-llm-consumption-daily",
    "retention-llm-consumption",
)
PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    stack_image_registry: docker.io
    timescaledb_image: {image}
    timescaledb_version: {tag}
  tasks:
    - ansible.builtin.import_role: {{name: aicost.monitoring.stack}}
    - ansible.builtin.import_role: {{name: aicost.monitoring.timescaledb}}
    - ansible.builtin.import_role: {{name: aicost.monitoring.stack, tasks_from: up}}
    - ansible.builtin.import_role: {{name: aicost.monitoring.timescaledb, tasks_from: init}}
"""


@pytest.fixture(scope="module")
def vm() -> Iterator[str]:
    with systemd_vm("b") as name:
        install_engine(name, TIMESCALEDB_APACHE_IMAGE, packages=("python3-psycopg2",))
        yield name


@pytest.fixture(scope="module")
def converge(vm: str, tmp_path_factory: pytest.TempPathFactory, ansible_collections_path):
    workdir = tmp_path_factory.mktemp("role")
    playbook = workdir / "play.yml"
    image, tag = TIMESCALEDB_APACHE_IMAGE.split(":")
    playbook.write_text(PLAYBOOK.format(image=image, tag=tag))

    def run(*extra: str) -> str:
        completed = run_playbook(playbook, ansible_collections_path, *vm_inventory(vm), *extra)
        assert completed.returncode == 0, completed.stdout[-4000:]
        return completed.stdout

    return run


def psql(vm: str, statement: str) -> str:
    return sh("docker", "exec", "-i", vm, "sh", "-c",
              "cd /opt/aicost && docker compose exec -T timescaledb"
              " psql -U postgres -d aicost -Atq",
              input_bytes=statement.encode())  # fmt: skip


def test_role_converges_then_changes_nothing_even_in_check_mode(vm, converge):
    first = converge()
    assert "changed=0" not in recap(first)
    assert " changed=0 " in recap(converge())
    assert " changed=0 " in recap(converge("--check"))
    status = sh(
        "docker", "exec", vm, "sh", "-c",
        "cd /opt/aicost && docker compose ps --format '{{.Service}} {{.Status}}'",
    )  # fmt: skip
    assert status.startswith("timescaledb Up") and "(healthy)" in status
    modes = sh("docker", "exec", vm, "stat", "-c", "%n %a %u",
               *(f"/opt/aicost/secrets/timescaledb_{who}_password"
                 for who in ("superuser", "writer", "reader")))  # fmt: skip
    assert modes.split("\n")[:3] == [
        "/opt/aicost/secrets/timescaledb_superuser_password 400 70",
        "/opt/aicost/secrets/timescaledb_writer_password 400 10001",
        "/opt/aicost/secrets/timescaledb_reader_password 400 472",
    ]


def test_a_changed_superuser_password_is_set_in_the_database(vm, converge):
    # The image applies POSTGRES_PASSWORD_FILE only to an empty volume; init.yml finds the
    # secret no longer opens the database and sets it over the container's local socket.
    # (Run alone, the first converge below creates the stack with the new password: the
    # test still holds.)
    rotated = "timescaledb_superuser_password=Rotated-Superuser-5b7e"
    assert "changed=0" not in recap(converge("-e", rotated))
    login = sh("docker", "exec", vm, "sh", "-c",
               "cd /opt/aicost && docker compose exec -T -e PGPASSWORD=Rotated-Superuser-5b7e"
               " timescaledb psql -h 127.0.0.1 -U postgres -d aicost -Atc 'SELECT 1'")  # fmt: skip
    assert login.strip() == "1"
    assert " changed=0 " in recap(converge("-e", rotated))


def test_host_timers_work_and_go_when_no_longer_needed(vm, converge):
    converge()
    timers = sh("docker", "exec", vm, "systemctl", "list-timers", "aicost-timescaledb-*",
                "--no-pager", "--all")  # fmt: skip
    for unit in UNITS:
        assert f"aicost-timescaledb-{unit}.timer" in timers
    psql(vm, "INSERT INTO llm_consumption (time, event_id, provider, model) VALUES"
             " (now(), gen_random_uuid(), 'openai', 'new'),"
             " (now() - interval '3 years', gen_random_uuid(), 'openai', 'old')")  # fmt: skip
    for unit in ("retention-llm-consumption", "refresh-llm-consumption-hourly"):
        sh("docker", "exec", vm, "systemctl", "start", f"aicost-timescaledb-job@{unit}.service")
        result = sh("docker", "exec", vm, "systemctl", "show", "-p", "Result",
                    f"aicost-timescaledb-job@{unit}.service")  # fmt: skip
        assert result.strip() == "Result=success"
    assert psql(vm, "SELECT model FROM llm_consumption ORDER BY 1").split() == ["new"]
    assert psql(vm, "SELECT model, requests FROM llm_consumption_hourly").strip() == "new|1"

    converge("-e", "timescaledb_host_timers=false")
    units = sh("docker", "exec", vm, "sh", "-c", "ls /etc/systemd/system | grep aicost- || true")
    assert units.strip() == ""
