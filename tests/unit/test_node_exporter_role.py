"""node-exporter is published on the address Prometheus scrapes, not on every address."""

import subprocess
from pathlib import Path

import yaml

NOT_THIS_HOST = "203.0.113.7"  # TEST-NET-3: never an address of this machine


def this_hosts_address() -> str:
    """A global IPv4 address of this machine (as `ip` lists it)."""
    listing = subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return listing.split()[3].split("/")[0]


def published_ports(run_role_tasks, tmp_path: Path, hostvars: dict, groups: list[str]) -> list:
    result = run_role_tasks(
        "node_exporter",
        "service",
        {"stack_dir": str(tmp_path)},
        groups={group: {"localhost": hostvars} for group in groups},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fragment = yaml.safe_load((tmp_path / "services" / "node-exporter.yml").read_text())
    return fragment["services"]["node-exporter"]["ports"]


def test_an_application_host_publishes_on_its_scrape_address(run_role_tasks, tmp_path) -> None:
    ports = published_ports(
        run_role_tasks,
        tmp_path,
        {"aicost_host_address": "10.20.1.11", "ansible_host": "10.99.0.1"},
        ["node_exporters"],
    )
    assert ports == [
        {"target": 9100, "published": "9100", "host_ip": "10.20.1.11", "protocol": "tcp"}
    ]


def test_without_a_scrape_address_the_ansible_host_is_used(run_role_tasks, tmp_path) -> None:
    ports = published_ports(
        run_role_tasks, tmp_path, {"ansible_host": "10.20.1.12"}, ["node_exporters"]
    )
    assert [port["host_ip"] for port in ports] == ["10.20.1.12"]


def test_a_monitoring_host_publishes_on_loopback(run_role_tasks, tmp_path) -> None:
    ports = published_ports(
        run_role_tasks,
        tmp_path,
        {"aicost_host_address": "10.20.0.10"},
        ["monitoring", "node_exporters"],
    )
    assert [port["host_ip"] for port in ports] == ["127.0.0.1"]


def test_an_ipv6_address_is_published_unambiguously(run_role_tasks, tmp_path) -> None:
    ports = published_ports(
        run_role_tasks, tmp_path, {"aicost_host_address": "fd00::11"}, ["node_exporters"]
    )
    assert [port["host_ip"] for port in ports] == ["fd00::11"]


def preflight(run_role_tasks, hostvars: dict) -> subprocess.CompletedProcess:
    return run_role_tasks(
        "node_exporter", "preflight", {}, groups={"node_exporters": {"localhost": hostvars}}
    )


def test_the_preflight_accepts_an_address_of_this_host(run_role_tasks) -> None:
    result = preflight(run_role_tasks, {"aicost_host_address": this_hosts_address()})
    assert result.returncode == 0, result.stdout


def test_the_preflight_refuses_an_address_this_host_does_not_have(run_role_tasks) -> None:
    result = preflight(run_role_tasks, {"aicost_host_address": NOT_THIS_HOST})
    assert result.returncode != 0
    assert f"{NOT_THIS_HOST} is not an address of this host" in result.stdout, result.stdout


def test_the_preflight_refuses_a_host_name(run_role_tasks) -> None:
    result = preflight(run_role_tasks, {"ansible_host": "app1.example.internal"})
    assert result.returncode != 0
    assert "set aicost_host_address" in result.stdout, result.stdout


def test_every_address_is_still_an_explicit_choice(run_role_tasks) -> None:
    result = preflight(
        run_role_tasks,
        {"ansible_host": "app1.example.internal", "node_exporter_publish_address": "0.0.0.0"},
    )
    assert result.returncode == 0, result.stdout


def firewall_preflight(
    run_role_tasks, variables: dict, monitoring: dict
) -> subprocess.CompletedProcess:
    return run_role_tasks(
        "node_exporter",
        "preflight",
        {"node_exporter_firewall": True} | variables,
        groups={"node_exporters": {"localhost": {"aicost_host_address": this_hosts_address()}},
                "monitoring": monitoring},
    )  # fmt: skip


def test_the_firewall_lets_the_monitoring_hosts_through_by_default(run_role_tasks) -> None:
    result = firewall_preflight(run_role_tasks, {}, {"mon1": {"aicost_host_address": "10.20.0.10"}})
    assert result.returncode == 0, result.stdout


def test_the_firewall_refuses_sources_it_cannot_write_as_rules(run_role_tasks) -> None:
    for monitoring in ({}, {"mon1.example.internal": {}}):
        result = firewall_preflight(run_role_tasks, {}, monitoring)
        assert result.returncode != 0
        assert "node_exporter_allowed_sources must list the IPv4" in result.stdout, result.stdout
    result = firewall_preflight(
        run_role_tasks, {"node_exporter_allowed_sources": ["10.0.0.0/8 -j ACCEPT"]}, {}
    )
    assert result.returncode != 0
