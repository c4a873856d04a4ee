"""cAdvisor runs unprivileged with read-only mounts, and Prometheus scrapes it per inventory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
APP_HOSTS = {"app1": {"aicost_host_address": "10.20.1.11"}, "app2": {"ansible_host": "app2.lan"}}


def render_fragment(run_role_tasks, tmp_path: Path, variables: dict, groups=None) -> dict:
    variables = {"stack_dir": str(tmp_path)} | variables
    result = run_role_tasks("cadvisor", "main", variables, groups=groups)
    assert result.returncode == 0, result.stdout + result.stderr
    return yaml.safe_load((tmp_path / "services" / "cadvisor.yml").read_text())


def test_cadvisor_runs_unprivileged_with_read_only_mounts(run_role_tasks, tmp_path: Path) -> None:
    fragment = render_fragment(
        run_role_tasks, tmp_path, {}, groups={"monitoring": {"localhost": {}}}
    )
    service = fragment["services"]["cadvisor"]
    assert service["image"] == "ghcr.io/google/cadvisor:v0.57.0"
    assert "privileged" not in service
    assert service["cap_drop"] == ["ALL"] and service["cap_add"] == ["SYSLOG"]
    assert service["devices"] == ["/dev/kmsg:/dev/kmsg:r"]
    assert service["read_only"] is True
    assert service["security_opt"] == ["no-new-privileges:true"]
    assert all(volume.endswith(":ro") for volume in service["volumes"])
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in service["volumes"]
    assert "--port=8081" in service["command"]
    assert "--docker_only=true" in service["command"]
    assert service["ports"] == [
        {"target": 8081, "published": "8081", "host_ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert service["deploy"]["resources"]["limits"] == {"memory": "256m", "cpus": "0.5"}
    assert service["healthcheck"]["test"][-1] == "http://127.0.0.1:8081/healthz"


def test_without_oom_events_it_holds_no_capability(run_role_tasks, tmp_path: Path) -> None:
    fragment = render_fragment(
        run_role_tasks,
        tmp_path,
        {
            "cadvisor_oom_events": False,
            "cadvisor_publish_address": "10.0.0.5",
            "stack_image_registry": "registry.example.internal/mirror",
        },
    )
    service = fragment["services"]["cadvisor"]
    assert service["cap_add"] == [] and service["devices"] == []
    assert service["ports"][0]["host_ip"] == "10.0.0.5"
    assert service["image"] == "registry.example.internal/mirror/google/cadvisor:v0.57.0"


def test_the_preflight_refuses_a_name_as_publish_address(run_role_tasks, tmp_path: Path) -> None:
    result = run_role_tasks(
        "cadvisor",
        "main",
        {"stack_dir": str(tmp_path)},
        groups={"node_exporters": {"localhost": {"ansible_host": "app1.lan"}}},
    )
    assert result.returncode != 0
    assert "set aicost_host_address" in result.stdout, result.stdout


def render_prometheus_config(tmp_path: Path, variables: dict, groups: dict) -> dict:
    """prometheus.yml as the prometheus role writes it (templated, not validated: no promtool)."""
    inventory = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                }
            },
            "children": {g: {"hosts": h} for g, h in groups.items()},
        }
    }
    playbook = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars_files": [
                str(ROOT / "roles/stack/defaults/main.yml"),
                str(ROOT / "roles/prometheus/defaults/main.yml"),
            ],
            "tasks": [
                {
                    "ansible.builtin.template": {
                        "src": str(ROOT / "roles/prometheus/templates/prometheus.yml.j2"),
                        "dest": str(tmp_path / "prometheus.yml"),
                        "mode": "0644",
                    }
                }
            ],
        }
    ]
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "playbook.json").write_text(json.dumps(playbook))
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    result = subprocess.run(
        ["ansible-playbook", "-i", "inventory.json", "playbook.json", "-e", "@vars.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return yaml.safe_load((tmp_path / "prometheus.yml").read_text())


def cadvisor_targets(config: dict) -> list:
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    return [
        (t["labels"]["host"], t["targets"][0])
        for t in jobs.get("cadvisor", {}).get("static_configs", [])
    ]


@pytest.mark.parametrize(
    "app_hosts, expected",
    [
        ({}, [("localhost", "cadvisor:8081")]),
        (
            APP_HOSTS,
            [
                ("localhost", "cadvisor:8081"),
                ("app1", "10.20.1.11:8081"),
                ("app2", "app2.lan:8081"),
            ],
        ),
    ],
)
def test_prometheus_scrapes_cadvisor_on_every_node_exporters_host(
    tmp_path: Path, app_hosts: dict, expected: list
) -> None:
    groups = {"monitoring": {"localhost": {}}, "node_exporters": {"localhost": {}} | app_hosts}
    assert cadvisor_targets(render_prometheus_config(tmp_path, {}, groups)) == expected


def test_a_render_only_service_is_not_scraped(tmp_path: Path) -> None:
    groups = {"monitoring": {"localhost": {}}, "node_exporters": {"localhost": {}} | APP_HOSTS}
    config = render_prometheus_config(
        tmp_path, {"stack_render_only_services": ["grafana", "cadvisor"]}, groups
    )
    assert cadvisor_targets(config) == []
    assert "node" in {job["job_name"] for job in config["scrape_configs"]}
