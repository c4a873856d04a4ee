"""The loki role writes a Loki 3.x configuration and a fragment that runs it as UID 10001.

Loki cannot run here (no image): the configuration is checked against the keys Loki 3.x
documents (docs/sources/shared/configuration.md of the pinned release) and against the 2.x
keys that 3.x refuses to start with.
"""

from pathlib import Path

import yaml

# Top-level blocks of loki.yaml in 3.x (a subset; the role needs no others).
LOKI3_TOP_LEVEL = {
    "target", "auth_enabled", "server", "common", "schema_config", "storage_config",
    "compactor", "limits_config", "analytics", "ingester", "querier", "query_range",
    "ruler", "distributor", "frontend", "query_scheduler", "pattern_ingester", "memberlist",
    "runtime_config", "tracing", "chunk_store_config", "bloom_build", "bloom_gateway",
}  # fmt: skip
LOKI3_COMPACTOR = {
    "working_directory", "compaction_interval", "apply_retention_interval", "retention_enabled",
    "retention_delete_delay", "retention_delete_worker_count", "delete_request_store",
    "delete_request_store_key_prefix", "delete_request_store_db_type",
    "delete_request_cancel_period",
}  # fmt: skip
LOKI3_LIMITS = {
    "retention_period", "retention_stream", "ingestion_rate_mb", "ingestion_burst_size_mb",
    "per_stream_rate_limit", "per_stream_rate_limit_burst", "max_global_streams_per_user",
    "max_label_names_per_series", "reject_old_samples", "reject_old_samples_max_age",
    "max_query_series", "volume_enabled", "max_line_size", "allow_structured_metadata",
    "max_entries_limit_per_query", "query_timeout",
}  # fmt: skip
# Loki 2.x settings that Loki 3.x rejects or that no longer exist.
LOKI2_ONLY = {"shared_store", "enforce_metric_name", "max_look_back_period", "table_manager",
              "boltdb_shipper", "boltdb-shipper", "v11", "v12"}  # fmt: skip


def all_keys_and_values(node) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(str(key))
            found |= all_keys_and_values(value)
    elif isinstance(node, list):
        for item in node:
            found |= all_keys_and_values(item)
    else:
        found.add(str(node))
    return found


def configure(run_role_tasks, tmp_path: Path, variables: dict | None = None):
    variables = {"stack_dir": str(tmp_path), "stack_render_only_services": ["loki"]} | (
        variables or {}
    )
    return run_role_tasks("loki", "main", variables)


def written_config(tmp_path: Path) -> dict:
    return yaml.safe_load((tmp_path / "config" / "loki" / "loki.yml").read_text())


def test_the_configuration_is_loki_3(run_role_tasks, tmp_path: Path) -> None:
    result = configure(run_role_tasks, tmp_path, {"loki_retention_period": "14d"})
    assert result.returncode == 0, result.stdout + result.stderr
    config = written_config(tmp_path)
    assert set(config) <= LOKI3_TOP_LEVEL
    assert all_keys_and_values(config).isdisjoint(LOKI2_ONLY)
    [period] = config["schema_config"]["configs"]
    assert [period["store"], period["schema"], period["object_store"]] == [
        "tsdb",
        "v13",
        "filesystem",
    ]
    # Compactor retention needs a 24h index period.
    assert period["index"]["period"] == "24h"
    compactor = config["compactor"]
    assert set(compactor) <= LOKI3_COMPACTOR
    assert compactor["retention_enabled"] is True
    assert compactor["delete_request_store"] == "filesystem"
    assert compactor["working_directory"].startswith("/loki/")
    limits = config["limits_config"]
    assert set(limits) <= LOKI3_LIMITS
    assert limits["retention_period"] == "14d"
    assert limits["ingestion_rate_mb"] <= limits["ingestion_burst_size_mb"]
    assert config["common"]["storage"]["filesystem"]["chunks_directory"].startswith("/loki/")
    assert config["analytics"] == {"reporting_enabled": False}


def test_overrides_merge_over_the_role_configuration(run_role_tasks, tmp_path: Path) -> None:
    result = configure(run_role_tasks, tmp_path, {
        "loki_limits": {"ingestion_rate_mb": 16},
        "loki_config": {"server": {"log_level": "warn"}},
    })  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    config = written_config(tmp_path)
    assert config["limits_config"]["ingestion_rate_mb"] == 16
    assert config["limits_config"]["retention_period"] == "31d"
    assert config["server"]["log_level"] == "warn"
    assert config["server"]["http_listen_port"] == 3100


def test_the_preflight_refuses_a_loki_2_setting(run_role_tasks, tmp_path: Path) -> None:
    result = configure(run_role_tasks, tmp_path, {
        "loki_config": {"compactor": {"shared_store": "filesystem"}}})  # fmt: skip
    assert result.returncode != 0
    assert "'shared_store' is a Loki 2.x setting" in result.stdout, result.stdout
    assert not (tmp_path / "config" / "loki" / "loki.yml").exists()


def test_the_preflight_refuses_a_gateway_without_a_password(run_role_tasks, tmp_path: Path) -> None:
    result = configure(run_role_tasks, tmp_path, {"loki_gateway_enabled": True})
    assert result.returncode != 0
    assert "loki_gateway_enabled needs loki_agent_password" in result.stdout, result.stdout


def test_the_preflight_refuses_a_version_that_is_not_3x(run_role_tasks, tmp_path: Path) -> None:
    result = configure(run_role_tasks, tmp_path, {"loki_version": "2.9.10"})
    assert result.returncode != 0
    assert "Loki 3.x release" in result.stdout, result.stdout


def test_the_fragment_runs_loki_unprivileged_on_loopback(run_role_tasks, tmp_path: Path) -> None:
    result = configure(run_role_tasks, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    fragment = yaml.safe_load((tmp_path / "services" / "loki.yml").read_text())
    assert set(fragment["services"]) == {"loki"}
    assert fragment["volumes"] == {"loki-data": {}}
    loki = fragment["services"]["loki"]
    assert loki["image"] == "docker.io/grafana/loki:3.7.8"
    assert loki["user"] == "10001"
    assert "loki-data:/loki" in loki["volumes"]
    assert f"{tmp_path}/config/loki:/etc/loki:ro" in loki["volumes"]
    assert loki["ports"] == [
        {"target": 3100, "published": "3100", "host_ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert loki["read_only"] is True and loki["cap_drop"] == ["ALL"]
    assert "privileged" not in loki
    assert loki["deploy"]["resources"]["limits"] == {"memory": "1g", "cpus": "1"}
    assert loki["healthcheck"]["test"][-1] == "http://127.0.0.1:3100/ready"
    assert loki["labels"]["aicost.inputs"]


def test_the_gateway_asks_agents_for_the_password(run_role_tasks, tmp_path: Path) -> None:
    variables = {"loki_gateway_enabled": True, "loki_agent_password": "s3cret-for-agents",
                 "loki_publish_address": "", "loki_memory_limit": ""}  # fmt: skip
    result = configure(run_role_tasks, tmp_path, variables)
    assert result.returncode == 0, result.stdout + result.stderr
    fragment = yaml.safe_load((tmp_path / "services" / "loki.yml").read_text())
    loki, gateway = fragment["services"]["loki"], fragment["services"]["loki-gateway"]
    assert loki["ports"] == []
    assert loki["deploy"]["resources"]["limits"] == {"cpus": "1"}
    assert gateway["ports"] == [
        {"target": 8080, "published": "3101", "host_ip": "0.0.0.0", "protocol": "tcp"}
    ]
    assert gateway["depends_on"] == {"loki": {"condition": "service_healthy"}}
    assert gateway["read_only"] is True and gateway["cap_drop"] == ["ALL"]
    htpasswd = tmp_path / "secrets" / "loki_gateway_htpasswd"
    mount = f"{htpasswd}:/run/secrets/loki_gateway_htpasswd:ro"
    assert mount in gateway["volumes"]
    assert htpasswd.read_text() == "aicost-agent:{PLAIN}s3cret-for-agents"
    assert oct(htpasswd.stat().st_mode & 0o777) == "0o400" and htpasswd.stat().st_uid == 101
    conf = (tmp_path / "config" / "loki" / "gateway" / "default.conf").read_text()
    assert "auth_basic_user_file /run/secrets/loki_gateway_htpasswd;" in conf
    push = conf.split("location = /loki/api/v1/push", 1)[1].split("}", 1)[0]
    assert "auth_basic " in push and "proxy_pass http://loki:3100;" in push
