"""A role's compose fragment becomes the same service in a Swarm stack."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.aicost.monitoring.plugins.filter.swarm_service import swarm_service

SECRETS = "/opt/aicost/secrets"
CONFIG = "/opt/aicost/config/cost-monitor"
FRAGMENT = {
    "services": {
        "cost-monitor": {
            "image": "aicost/cost-monitor:0.1.0",
            "user": "10001:10001",
            "read_only": True,
            "security_opt": ["no-new-privileges:true"],
            "cap_drop": ["ALL"],
            "restart": "unless-stopped",
            "pid": "host",
            "depends_on": {"timescaledb": {"condition": "service_healthy"}},
            "volumes": [
                f"{CONFIG}:/etc/cost-monitor:ro",
                "cost-monitor-spool:/var/lib/aicost/spool",
                f"{SECRETS}/db_password:/run/secrets/db_password:ro",
            ],
            "ports": ["127.0.0.1:8080:8080", "0.0.0.0:8443:8080"],
            "deploy": {"resources": {"limits": {"memory": "512m"}}},
        }
    },
    "volumes": {"cost-monitor-spool": {}},
}
FILES = {
    f"{CONFIG}/cost-monitor.yml": {"kind": "config", "digest": "a1b2c3d4e5f6a7b8"},
    f"{SECRETS}/db_password": {"kind": "secret", "digest": "0f0e0d0c0b0a0908"},
}


def converted(**options) -> dict:
    options = {"stack": "aicost", "files": FILES} | options
    return swarm_service(FRAGMENT, "cost-monitor", **options)


def test_keys_a_stack_ignores_are_dropped_and_the_rest_kept() -> None:
    service = converted()["services"]["cost-monitor"]
    for key in ("restart", "depends_on", "security_opt", "container_name", "pid"):
        assert key not in service
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    assert service["deploy"]["restart_policy"] == {"condition": "any", "delay": "5s"}
    assert service["deploy"]["resources"] == {"limits": {"memory": "512m"}}


def test_files_become_configs_and_secrets_named_by_their_digest() -> None:
    stack = converted()
    service = stack["services"]["cost-monitor"]
    assert service["volumes"] == ["cost-monitor-spool:/var/lib/aicost/spool"]
    config = "aicost_cost-monitor_cost-monitor.yml_a1b2c3d4e5"
    secret = "aicost_cost-monitor_db_password_0f0e0d0c0b"
    assert service["configs"] == [
        {"source": config, "target": "/etc/cost-monitor/cost-monitor.yml"}
    ]
    assert service["secrets"] == [{"source": secret, "target": "/run/secrets/db_password"}]
    assert stack["configs"] == {config: {"name": config, "file": f"{CONFIG}/cost-monitor.yml"}}
    assert stack["secrets"] == {secret: {"name": secret, "file": f"{SECRETS}/db_password"}}
    assert stack["volumes"] == {"cost-monitor-spool": {}}

    changed = converted(
        files=FILES | {f"{SECRETS}/db_password": {"kind": "secret", "digest": "ff"}}
    )
    assert changed["services"]["cost-monitor"]["secrets"][0]["source"] != secret


def test_a_bind_mount_not_handed_over_stays() -> None:
    service = converted(files={})["services"]["cost-monitor"]
    assert f"{CONFIG}:/etc/cost-monitor:ro" in service["volumes"]
    assert "configs" not in service and "secrets" not in service


def test_loopback_ports_are_dropped_and_the_others_published_in_host_mode() -> None:
    service = converted()["services"]["cost-monitor"]
    assert service["ports"] == [
        {"target": 8080, "published": 8443, "protocol": "tcp", "mode": "host"}
    ]
    only_loopback = {
        "services": {"p": {"image": "p", "ports": ["127.0.0.1:9090:9090", "[::1]:9091:9090"]}}
    }
    assert "ports" not in swarm_service(only_loopback, "p", stack="aicost")["services"]["p"]
    udp = {"services": {"p": {"image": "p", "ports": ["514:514/udp"]}}}
    assert swarm_service(udp, "p", stack="aicost")["services"]["p"]["ports"] == [
        {"target": 514, "published": 514, "protocol": "udp", "mode": "host"}
    ]


def test_replicas_spread_pinned_by_label_or_global() -> None:
    spread = converted(replicas=2, max_replicas_per_node=1, update_order="start-first")[
        "services"
    ]["cost-monitor"]["deploy"]
    assert spread["mode"] == "replicated" and spread["replicas"] == 2
    assert spread["placement"] == {
        "preferences": [{"spread": "node.id"}],
        "max_replicas_per_node": 1,
    }
    assert spread["update_config"]["order"] == "start-first"
    assert spread["update_config"]["failure_action"] == "rollback"
    assert spread["update_config"]["parallelism"] == 1

    constraint = "node.labels.aicost.inventory-host == db1"
    pinned = converted(constraints=[constraint])["services"]["cost-monitor"]["deploy"]
    assert pinned["placement"] == {"constraints": [constraint]}

    everywhere = converted(mode="global", endpoint_mode="dnsrr")["services"]["cost-monitor"][
        "deploy"
    ]
    assert everywhere["mode"] == "global" and "replicas" not in everywhere
    assert everywhere["endpoint_mode"] == "dnsrr"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "daemon"}, "replicated or global"),
        ({"update_order": "sideways"}, "update_order"),
        ({"publish_mode": "mesh"}, "publish_mode"),
        (
            {"files": {f"{SECRETS}/db_password": {"kind": "volume", "digest": "x"}}},
            "kind config or secret",
        ),
        ({"files": {f"{SECRETS}/db_password": {"kind": "secret"}}}, "digest"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        converted(**options)


def test_a_missing_service_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="no service 'grafana'"):
        swarm_service(FRAGMENT, "grafana", stack="aicost")


def test_long_syntax_ports_lose_their_host_address() -> None:
    ports = [
        {"target": 9100, "published": "9100", "host_ip": "10.0.0.5", "protocol": "tcp"},
        {"target": 9101, "published": "9101", "host_ip": "127.0.0.1", "protocol": "tcp"},
    ]
    fragment = {"services": {"n": {"image": "n", "ports": ports}}}
    assert swarm_service(fragment, "n", stack="aicost")["services"]["n"]["ports"] == [
        {"target": 9100, "published": 9100, "protocol": "tcp", "mode": "host"}
    ]


def test_unpublished_services_keep_no_port_and_tmpfs_becomes_a_mount() -> None:
    service = FRAGMENT["services"]["cost-monitor"] | {"tmpfs": ["/tmp", "/run/app:uid=10001"]}
    fragment = {"services": {"cost-monitor": service}}
    spec = swarm_service(fragment, "cost-monitor", stack="aicost", publish=False)
    service = spec["services"]["cost-monitor"]
    assert "ports" not in service and "tmpfs" not in service
    assert service["volumes"][-2:] == [
        {"type": "tmpfs", "target": "/tmp"},
        {"type": "tmpfs", "target": "/run/app"},
    ]


def test_ports_go_through_the_routing_mesh_when_asked() -> None:
    service = converted(publish_mode="ingress")["services"]["cost-monitor"]
    assert service["ports"] == [
        {"target": 8080, "published": 8443, "protocol": "tcp", "mode": "ingress"}
    ]
