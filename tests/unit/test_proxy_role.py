"""The proxy role: what it publishes, and what its preflight refuses before anything changes.

The Caddy configuration itself is exercised live in molecule's default scenario (HTTPS with the
internal CA, the redirect, basic auth, the ingest API through it).
"""

from pathlib import Path

import pytest
import yaml

# What a monitoring host publishes beyond itself while the proxy runs there: nothing.
LOOPBACK = {
    "grafana_publish_address": "",
    "prometheus_publish_address": "127.0.0.1",
    "alertmanager_publish_address": "127.0.0.1",
    "timescaledb_publish_address": "127.0.0.1",
    "cost_monitor_publish_address": "::1",
}


def test_the_proxy_publishes_https_and_http_from_unprivileged_ports(
    run_role_tasks, tmp_path: Path
) -> None:
    variables = {"stack_dir": str(tmp_path), "proxy_publish_address": "10.20.0.10",
                 "proxy_https_port": 8443}  # fmt: skip
    result = run_role_tasks("proxy", "service", variables)
    assert result.returncode == 0, result.stdout
    service = yaml.safe_load((tmp_path / "services" / "proxy.yml").read_text())["services"]["proxy"]
    assert service["ports"] == [
        {"target": 8443, "published": "8443", "host_ip": "10.20.0.10", "protocol": "tcp"},
        {"target": 8080, "published": "80", "host_ip": "10.20.0.10", "protocol": "tcp"},
    ]
    assert f"{tmp_path}/secrets/proxy_tls_key:/run/secrets/proxy_tls_key:ro" in service["volumes"]


def test_the_preflight_takes_loopback_services(run_role_tasks) -> None:
    result = run_role_tasks("proxy", "preflight", LOOPBACK)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("variable", sorted(LOOPBACK))
def test_the_preflight_refuses_a_service_published_beyond_the_host(
    run_role_tasks, variable: str
) -> None:
    result = run_role_tasks("proxy", "preflight", LOOPBACK | {variable: "0.0.0.0"})
    assert result.returncode != 0
    assert f"{variable} is '0.0.0.0': with the proxy on this host" in result.stdout, result.stdout


@pytest.mark.parametrize("variables, says", [
    ({"proxy_tls_source": "files"}, "set proxy_tls_certificate"),
    ({"proxy_tls_source": "acme"}, "set proxy_acme_email"),
    ({"proxy_tls_source": "acme", "proxy_acme_email": "ops@example.com",
      "proxy_server_name": "10.20.0.10"}, "no certificate for an IP address"),
    ({"proxy_tls_min_version": "1.0"}, "proxy_tls_min_version must be one of: 1.2, 1.3"),
    ({"proxy_server_name": "a\nb"}, "proxy_server_name and proxy_tls_extra_names are"),
])  # fmt: skip
def test_the_preflight_refuses_bad_tls_settings(run_role_tasks, variables: dict, says: str) -> None:
    result = run_role_tasks("proxy", "preflight", LOOPBACK | variables)
    assert result.returncode != 0
    assert says in " ".join(result.stdout.split()), result.stdout


@pytest.mark.parametrize("variables, root_url", [
    ({}, "https://localhost/"),
    ({"proxy_server_name": "mon1.example.internal", "proxy_https_port": 8443},
     "https://mon1.example.internal:8443/"),
    ({"proxy_enabled": False}, "%(protocol)s://%(domain)s:%(http_port)s/"),
    ({"grafana_root_url": "https://grafana.example.com/"}, "https://grafana.example.com/"),
])  # fmt: skip
def test_grafana_links_to_the_address_users_open(
    run_role_tasks, tmp_path: Path, variables: dict, root_url: str
) -> None:
    result = run_role_tasks("grafana", "configure", {"stack_dir": str(tmp_path)} | variables)
    assert result.returncode == 0, result.stdout
    ini = (tmp_path / "config" / "grafana" / "grafana.ini").read_text()
    assert f"root_url = {root_url}\n" in ini
