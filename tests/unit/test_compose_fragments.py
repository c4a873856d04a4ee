"""Compose fragments hold exactly the keys the roles put there, whatever the variables hold.

Each role's fragment is rendered with Ansible's own templating from hostile values: a newline
followed by a YAML key (`privileged: true`), flow syntax, and `${...}`, which compose would
otherwise replace from the environment (the fragment escapes it as `$${...}`).
"""

from pathlib import Path

import pytest
import yaml

NEW_KEY = "x\n    privileged: true\n    cap_add: [ALL]"
NEW_ENV = "postgres\n      POSTGRES_HOST_AUTH_METHOD: trust"
FLOW = "{privileged: true}"
FROM_ENV = "${HOME}"
# Keys of the limits and hardening every service gets (checked by the tests below).
HARDENING = {"user", "read_only", "tmpfs", "security_opt", "cap_drop", "deploy"}


def as_written(value: str) -> str:
    """The value as the fragment spells it: compose reads `$$` back as `$`."""
    return value.replace("$", "$$")


def render(run_role_tasks, tmp_path: Path, role: str, service: str, variables: dict,
           groups: dict | None = None) -> dict:  # fmt: skip
    variables = {"stack_dir": str(tmp_path), "stack_inputs_digest": "0123456789abcdef"} | variables
    result = run_role_tasks(role, "service", variables, groups=groups)
    assert result.returncode == 0, result.stdout + result.stderr
    return yaml.safe_load((tmp_path / "services" / f"{service}.yml").read_text())


def test_prometheus(run_role_tasks, tmp_path: Path) -> None:
    fragment = render(run_role_tasks, tmp_path, "prometheus", "prometheus", {
        "prometheus_retention": NEW_KEY,
        "prometheus_retention_size": FLOW,
        "prometheus_external_url": FROM_ENV,
        "prometheus_version": NEW_KEY,
    })  # fmt: skip
    assert set(fragment) == {"services", "volumes"}
    service = fragment["services"]["prometheus"]
    assert set(service) - HARDENING == {
        "image",
        "command",
        "volumes",
        "ports",
        "healthcheck",
        "restart",
    }
    assert service["image"].endswith(":" + NEW_KEY)
    assert service["command"][2:] == [
        f"--storage.tsdb.retention.time={NEW_KEY}",
        f"--storage.tsdb.retention.size={FLOW}",
        f"--web.external-url={as_written(FROM_ENV)}",
        # Behind the proxy's /prometheus/ the external URL has a path; the routes stay at /.
        "--web.route-prefix=/",
    ]


def test_alertmanager(run_role_tasks, tmp_path: Path) -> None:
    fragment = render(run_role_tasks, tmp_path, "alertmanager", "alertmanager", {
        "alertmanager_data_retention": NEW_KEY,
        "alertmanager_external_url": FROM_ENV,
        "alertmanager_receivers": [{"name": FLOW, "integrations": [
            {"type": "webhook", "secret": "https://hooks.example/a"}]}],
    })  # fmt: skip
    assert set(fragment) == {"services", "volumes", "secrets"}
    service = fragment["services"]["alertmanager"]
    assert set(service) - HARDENING == {
        "image",
        "command",
        "volumes",
        "labels",
        "secrets",
        "ports",
        "healthcheck",
        "restart",
    }
    assert f"--data.retention={NEW_KEY}" in service["command"]
    assert f"--web.external-url={as_written(FROM_ENV)}" in service["command"]
    assert len(service["secrets"]) == 1
    assert list(fragment["secrets"]) == service["secrets"]


def test_node_exporter(run_role_tasks, tmp_path: Path) -> None:
    fragment = render(run_role_tasks, tmp_path, "node_exporter", "node-exporter", {
        "node_exporter_extra_args": [NEW_KEY, FLOW, FROM_ENV],
        "node_exporter_rootfs_propagation": NEW_KEY,
        "node_exporter_publish_address": "127.0.0.1",
        "node_exporter_textfile_dir": str(tmp_path / "textfile"),
    })  # fmt: skip
    assert set(fragment) == {"services"}
    service = fragment["services"]["node-exporter"]
    assert set(service) - HARDENING == {
        "image",
        "command",
        "pid",
        "volumes",
        "ports",
        "healthcheck",
        "restart",
    }
    assert service["command"] == [
        "--path.rootfs=/host",
        f"--collector.textfile.directory=/host{tmp_path}/textfile",
        NEW_KEY,
        FLOW,
        as_written(FROM_ENV),
    ]
    assert service["volumes"] == [f"/:/host:ro,{NEW_KEY}"]


def test_timescaledb(run_role_tasks, tmp_path: Path) -> None:
    fragment = render(run_role_tasks, tmp_path, "timescaledb", "timescaledb", {
        "timescaledb_superuser": NEW_ENV,
        "timescaledb_database": FROM_ENV,
        "timescaledb_shm_size": NEW_KEY,
    })  # fmt: skip
    assert set(fragment) == {"services", "volumes"}
    service = fragment["services"]["timescaledb"]
    assert set(service) - HARDENING == {
        "image",
        "environment",
        "volumes",
        "ports",
        "shm_size",
        "healthcheck",
        "restart",
    }
    assert service["environment"] == {
        "POSTGRES_USER": NEW_ENV,
        "POSTGRES_DB": as_written(FROM_ENV),
        "POSTGRES_PASSWORD_FILE": "/run/secrets/timescaledb_superuser_password",
        "TIMESCALEDB_TELEMETRY": "off",
    }
    assert service["shm_size"] == NEW_KEY
    assert service["healthcheck"]["test"][-4:] == ["-U", NEW_ENV, "-d", as_written(FROM_ENV)]


def test_cost_monitor(run_role_tasks, tmp_path: Path) -> None:
    fragment = render(run_role_tasks, tmp_path, "cost_monitor", "cost-monitor", {
        "cost_monitor_image": "example/cost-monitor",
        "cost_monitor_version": NEW_KEY,
        "cost_monitor_publish_address": FROM_ENV,
    })  # fmt: skip
    assert set(fragment) == {"services", "volumes"}
    service = fragment["services"]["cost-monitor"]
    assert set(service) - HARDENING == {
        "image",
        "command",
        "labels",
        "volumes",
        "ports",
        "depends_on",
        "healthcheck",
        "restart",
    }
    assert service["image"] == f"docker.io/example/cost-monitor:{NEW_KEY}"
    assert service["ports"] == [f"{as_written(FROM_ENV)}:8080:8080"]


# role, service, memory and CPU limits by default, whether its root file system is read-only
HARDENED = [
    ("prometheus", "prometheus", "1g", "1"),
    ("alertmanager", "alertmanager", "256m", "0.5"),
    ("node_exporter", "node-exporter", "128m", "0.5"),
    ("timescaledb", "timescaledb", "1g", "1"),
    ("cost_monitor", "cost-monitor", "512m", "1"),
    ("grafana", "grafana", "512m", "1"),
    ("proxy", "proxy", "128m", "0.5"),
]
EXAMPLE_IMAGE = {"cost_monitor_image": "example/cost-monitor"}


@pytest.mark.parametrize("role, service, memory, cpus", HARDENED)
def test_every_service_runs_limited_unprivileged_and_read_only(
    run_role_tasks, tmp_path: Path, role: str, service: str, memory: str, cpus: str
) -> None:
    spec = render(run_role_tasks, tmp_path, role, service, EXAMPLE_IMAGE)["services"][service]
    assert spec["deploy"] == {"resources": {"limits": {"memory": memory, "cpus": cpus}}}
    assert spec["security_opt"] == ["no-new-privileges:true"]
    assert spec["cap_drop"] == ["ALL"]
    assert "cap_add" not in spec
    assert spec["restart"] == "unless-stopped"
    assert spec["read_only"] is True
    uid = str(spec["user"]).split(":", maxsplit=1)[0]
    assert uid.isdigit() and uid != "0"


@pytest.mark.parametrize("role, service", [entry[:2] for entry in HARDENED])
def test_limits_follow_the_variables_and_empty_sets_none(
    run_role_tasks, tmp_path: Path, role: str, service: str
) -> None:
    variables = EXAMPLE_IMAGE | {f"{role}_memory_limit": "3g", f"{role}_cpu_limit": ""}
    spec = render(run_role_tasks, tmp_path, role, service, variables)["services"][service]
    assert spec["deploy"] == {"resources": {"limits": {"memory": "3g"}}}
    variables = EXAMPLE_IMAGE | {f"{role}_memory_limit": "", f"{role}_cpu_limit": ""}
    spec = render(run_role_tasks, tmp_path, role, service, variables)["services"][service]
    assert "deploy" not in spec


@pytest.mark.parametrize("value", ["lots", "1g\n", "-1", "1.5g"])
def test_the_preflight_refuses_a_memory_limit_docker_would_not_take(
    run_role_tasks, tmp_path: Path, value: str
) -> None:
    result = run_role_tasks("stack", "limits", {"stack_limits": {"grafana_memory_limit": value}})
    assert result.returncode != 0
    assert "grafana_memory_limit must be a memory size" in result.stdout, result.stdout


def test_the_preflight_takes_sizes_and_cpu_shares(run_role_tasks, tmp_path: Path) -> None:
    limits = {"a_memory_limit": "512m", "b_memory_limit": 1073741824, "a_cpu_limit": "0.5",
              "b_cpu_limit": 2, "c_cpu_limit": ""}  # fmt: skip
    result = run_role_tasks("stack", "limits", {"stack_limits": limits})
    assert result.returncode == 0, result.stdout
    result = run_role_tasks("stack", "limits", {"stack_limits": {"a_cpu_limit": "half"}})
    assert "a_cpu_limit must be a number of CPUs" in result.stdout, result.stdout


@pytest.mark.parametrize("role, service, variables", [
    ("prometheus", "prometheus", {}), ("alertmanager", "alertmanager", {}),
    ("node_exporter", "node-exporter", {}), ("timescaledb", "timescaledb", {}),
    ("cost_monitor", "cost-monitor", {"cost_monitor_image": "example/cost-monitor"}),
    ("grafana", "grafana", {}), ("loki", "loki", {}),
])  # fmt: skip
def test_a_fragment_of_plain_values_leaves_no_dollar_unescaped(
    run_role_tasks, tmp_path: Path, role: str, service: str, variables: dict
) -> None:
    render(run_role_tasks, tmp_path, role, service, variables)
    text = (tmp_path / "services" / f"{service}.yml").read_text()
    assert "$" not in text.replace("$$", "")


@pytest.mark.parametrize("mode, network", [
    ("compose", {"name": NEW_KEY}),
    # The overlay network the stack's manager creates, which the compose project joins.
    ("swarm", {"name": NEW_KEY, "external": True}),
])  # fmt: skip
def test_the_project_file(run_role_tasks, tmp_path: Path, mode: str, network: dict) -> None:
    for directory in ("services", "swarm"):  # as the stack's layout leaves them
        (tmp_path / directory).mkdir(exist_ok=True)
    variables = {
        "stack_dir": str(tmp_path),
        "stack_mode": mode,
        "stack_network_name": NEW_KEY,  # the preflight refuses it; up must hold regardless
        "stack_render_only_services": ["grafana"],
        # What the stack's engine check and the service roles leave behind; no engine here.
        "__stack_engine_ready": False,
        "__stack_services": ["prometheus", "grafana"],
        "__stack_swarm_services": [],
    }
    result = run_role_tasks("stack", "up", variables)
    assert result.returncode == 0, result.stdout + result.stderr
    project = yaml.safe_load((tmp_path / "compose.yml").read_text())
    assert project == {
        "name": "aicost",
        "include": ["services/prometheus.yml"],
        "networks": {"default": network},
    }


def test_the_preflight_refuses_a_network_name_docker_would_not_take(
    run_role_tasks, tmp_path: Path
) -> None:
    result = run_role_tasks("stack", "preflight", {"stack_network_name": NEW_KEY})
    assert result.returncode != 0
    assert "a Docker network name" in result.stdout, result.stdout
