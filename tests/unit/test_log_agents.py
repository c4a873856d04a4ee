"""The promtail and alloy roles build their configurations from the same inventory inputs.

Neither agent can run here (no image): Promtail's configuration is checked against the keys
Promtail 3.6 documents, Alloy's is parsed (tests/support/alloy_syntax.py) and checked for
known components, attributes and references; both must carry the same labels and sources.
"""

from pathlib import Path

import pytest
import yaml
from alloy_syntax import AlloySyntaxError, Block, Reference, parse, references

# Loki published on the host's address (no gateway), or behind its gateway.
MONITORING = {"mon1": {"aicost_host_address": "10.20.0.10", "loki_publish_address": "10.20.0.10"}}
LOOPBACK_ONLY = {"mon1": {"aicost_host_address": "10.20.0.10"}}
GATEWAY = {
    "mon1": {
        "aicost_host_address": "10.20.0.10",
        "loki_gateway_enabled": True,
        "loki_gateway_port": 3101,
    }
}
PASSWORD = "agents-secret"

# Promtail 3.6 (docs/sources/send-data/promtail/configuration.md of the 3.6 branch).
PROMTAIL_TOP_LEVEL = {
    "server",
    "clients",
    "positions",
    "scrape_configs",
    "limits_config",
    "target_config",
    "options",
    "tracing",
    "global",
}
PROMTAIL_CLIENT = {
    "url",
    "headers",
    "tenant_id",
    "batchwait",
    "batchsize",
    "basic_auth",
    "oauth2",
    "bearer_token",
    "bearer_token_file",
    "proxy_url",
    "tls_config",
    "backoff_config",
    "drop_rate_limited_batches",
    "external_labels",
    "timeout",
}
PROMTAIL_SCRAPE = {
    "job_name",
    "pipeline_stages",
    "static_configs",
    "docker_sd_configs",
    "journal",
    "relabel_configs",
    "file_sd_configs",
    "syslog",
    "loki_push_api",
}

# Alloy components the roles use: their arguments and blocks, and what each exports
# (https://grafana.com/docs/alloy/latest/reference/components/).
ALLOY_COMPONENTS = {
    "logging": ({"level", "format", "write_to"}, set(), set()),
    "loki.write": ({"external_labels", "max_streams"}, {"endpoint"}, {"receiver"}),
    "local.file_match": ({"path_targets", "sync_period", "ignore_older_than"}, set(), {"targets"}),
    "loki.source.file": (
        {"targets", "forward_to", "encoding", "tail_from_end", "legacy_positions_file"},
        {"decompression", "file_watch"},
        set(),
    ),
    "loki.process": (
        {"forward_to"},
        {"stage.json", "stage.labels", "stage.timestamp", "stage.match"},
        {"receiver"},
    ),
    "discovery.docker": (
        {"host", "port", "refresh_interval", "host_networking_host", "match_first_network"},
        {"filter"},
        {"targets"},
    ),
    "discovery.relabel": ({"targets"}, {"rule"}, {"output", "rules"}),
    "loki.source.docker": (
        {"host", "targets", "forward_to", "labels", "relabel_rules", "refresh_interval"},
        set(),
        set(),
    ),
    "loki.relabel": ({"forward_to", "max_cache_size"}, {"rule"}, {"receiver", "rules"}),
    "loki.source.journal": (
        {"format_as_json", "max_age", "path", "relabel_rules", "matches", "forward_to", "labels"},
        set(),
        set(),
    ),
}
ALLOY_BLOCKS = {
    "endpoint": {
        "url",
        "name",
        "headers",
        "batch_wait",
        "batch_size",
        "remote_timeout",
        "tenant_id",
        "bearer_token_file",
        "retry_on_http_429",
    },
    "basic_auth": {"username", "password", "password_file"},
    "rule": {
        "source_labels",
        "separator",
        "regex",
        "modulus",
        "target_label",
        "replacement",
        "action",
    },
    "stage.json": {"expressions", "source", "drop_malformed"},
    "stage.labels": {"values"},
    "stage.timestamp": {"source", "format", "fallback_formats", "location", "action_on_failure"},
    "stage.match": {"selector", "pipeline_name", "action", "drop_counter_reason"},
}
# Every label a line may carry: bounded by the inventory, the containers and the code.
BOUNDED_LABELS = {
    "host",
    "env",
    "group",
    "job",
    "service",
    "container",
    "compose_service",
    "compose_project",
    "image",
    "level",
    "logger",
    "unit",
    "__path__",
}


def run(
    run_role_tasks,
    tmp_path: Path,
    agent: str,
    variables: dict | None = None,
    monitoring: dict | None = None,
    on_monitoring_host: bool = False,
):
    for directory in ("secrets", "services"):  # what the stack role's layout creates
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
    groups = {
        "monitoring": (monitoring or MONITORING)
        | ({"localhost": {}} if on_monitoring_host else {}),
        "log_agents": {"localhost": {}},
        "node_exporters": {"localhost": {}},
    }
    variables = {
        "stack_dir": str(tmp_path),
        "stack_render_only_services": [agent],
        "log_agent": agent,
    } | (variables or {})
    return run_role_tasks(agent, "main", variables, groups=groups)


def rendered(run_role_tasks, tmp_path: Path, agent: str, **kwargs) -> tuple[object, dict]:
    result = run(run_role_tasks, tmp_path, agent, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    fragment = yaml.safe_load((tmp_path / "services" / f"{agent}.yml").read_text())
    if agent == "promtail":
        config = yaml.safe_load((tmp_path / "config" / "promtail" / "promtail.yml").read_text())
    else:
        config = parse((tmp_path / "config" / "alloy" / "config.alloy").read_text())
    return config, fragment


def check_alloy_components(config: Block) -> None:
    """Known components and blocks, known attributes, every reference to a declared export."""
    declared = {}
    for component in config.blocks:
        assert component.name in ALLOY_COMPONENTS, component.name
        arguments, blocks, exports = ALLOY_COMPONENTS[component.name]
        assert set(component.attributes) <= arguments, (component.name, component.attributes)
        if component.name != "logging":
            assert component.label, component.name
            key = f"{component.name}.{component.label}"
            assert key not in declared, f"{key} declared twice"
            declared[key] = exports
        stack = [(block, component.name) for block in component.blocks]
        while stack:
            block, parent = stack.pop()
            assert block.name in blocks | set(ALLOY_BLOCKS) - {"rule"} | (
                {"rule"} if "rule" in blocks else set()
            ), (parent, block.name)
            assert set(block.attributes) <= ALLOY_BLOCKS[block.name], (block.name, block.attributes)
            stack.extend((inner, block.name) for inner in block.blocks)
    used = set()
    for ref in references(config):
        owner = next((key for key in declared if ref.path.startswith(key + ".")), None)
        assert owner, f"{ref.path} refers to no declared component"
        assert ref.path[len(owner) + 1 :] in declared[owner], f"{owner} exports no {ref.path}"
        used.add(owner)
    # Nothing that only passes lines on is left dangling.
    passing_on = {
        key for key in declared if declared[key] & {"receiver", "targets", "output", "rules"}
    }
    assert passing_on <= used, passing_on - used


def alloy_labels(config: Block) -> set[str]:
    names = set()
    for component in config.blocks:
        for attribute in ("external_labels", "labels"):
            names |= set(component.attributes.get(attribute, {}))
        for targets in component.attributes.get("path_targets", []):
            names |= set(targets)
        stack = list(component.blocks)
        while stack:
            block = stack.pop()
            names |= set(block.attributes.get("values", {}))
            if "target_label" in block.attributes:
                names.add(block.attributes["target_label"])
            stack.extend(block.blocks)
    return names


def promtail_labels(config: dict) -> set[str]:
    names = set(config["clients"][0]["external_labels"])
    for job in config["scrape_configs"]:
        for target in job.get("static_configs", []):
            names |= set(target["labels"])
        names |= {rule["target_label"] for rule in job.get("relabel_configs", [])}
        names |= set(job.get("journal", {}).get("labels", {}))
        stages = list(job.get("pipeline_stages", []))
        while stages:
            stage = stages.pop()
            names |= set(stage.get("labels", {}) or {})
            stages.extend(stage.get("match", {}).get("stages", []))
    return names


def test_promtail_on_an_application_host_pushes_through_the_gateway(
    run_role_tasks, tmp_path: Path
) -> None:
    config, fragment = rendered(
        run_role_tasks,
        tmp_path,
        "promtail",
        monitoring=GATEWAY,
        variables={"loki_agent_password": PASSWORD, "log_agent_extra_labels": {"team": "search"}},
    )
    assert set(config) <= PROMTAIL_TOP_LEVEL
    [client] = config["clients"]
    assert set(client) <= PROMTAIL_CLIENT
    assert client["url"] == "http://10.20.0.10:3101/loki/api/v1/push"
    assert client["basic_auth"] == {
        "username": "aicost-agent",
        "password_file": "/run/secrets/log_agent_loki_password",
    }
    assert client["external_labels"] == {
        "host": "localhost",
        "env": tmp_path.name,
        "group": "log_agents",
        "team": "search",
    }
    assert config["positions"] == {"filename": "/var/lib/promtail/positions.yaml"}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"host_logs", "docker"}
    for job in jobs.values():
        assert set(job) <= PROMTAIL_SCRAPE
    assert jobs["host_logs"]["static_configs"] == [
        {"targets": ["localhost"], "labels": {"job": "varlogs", "__path__": "/var/log/*.log"}}
    ]
    assert jobs["docker"]["docker_sd_configs"] == [
        {"host": "unix:///var/run/docker.sock", "refresh_interval": "15s"}
    ]
    assert promtail_labels(config) <= BOUNDED_LABELS | {"team"}
    secret = tmp_path / "secrets" / "log_agent_loki_password"
    assert secret.read_text() == PASSWORD and oct(secret.stat().st_mode & 0o777) == "0o400"
    assert PASSWORD not in (tmp_path / "config" / "promtail" / "promtail.yml").read_text()
    service = fragment["services"]["promtail"]
    assert service["image"] == "docker.io/grafana/promtail:3.6.11"
    assert f"{secret}:/run/secrets/log_agent_loki_password:ro" in service["volumes"]
    assert "promtail-data:/var/lib/promtail" in service["volumes"]
    assert "cost-monitor-logs" not in fragment["volumes"]


def test_on_the_monitoring_host_the_agents_use_the_compose_network_and_read_the_cost_monitor(
    run_role_tasks, tmp_path: Path
) -> None:
    config, fragment = rendered(
        run_role_tasks,
        tmp_path,
        "promtail",
        monitoring=GATEWAY,
        on_monitoring_host=True,
        variables={"loki_agent_password": PASSWORD},
    )
    [client] = config["clients"]
    assert client["url"] == "http://loki:3100/loki/api/v1/push"
    assert "basic_auth" not in client
    assert client["external_labels"]["group"] == "monitoring"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    cost_monitor = jobs["cost_monitor"]
    assert cost_monitor["static_configs"][0]["labels"]["__path__"] == (
        "/var/lib/aicost-logs/cost-monitor/*.log"
    )
    assert cost_monitor["pipeline_stages"][:2] == [
        {"json": {"expressions": {"level": "level", "logger": "logger", "time": "time"}}},
        {"labels": {"level": "level", "logger": "logger"}},
    ]
    assert jobs["docker"]["pipeline_stages"][0]["match"]["selector"] == (
        '{compose_service=~"cost-monitor"}'
    )
    assert fragment["volumes"] == {"promtail-data": {}, "cost-monitor-logs": {}}
    assert (
        "cost-monitor-logs:/var/lib/aicost-logs/cost-monitor:ro"
        in fragment["services"]["promtail"]["volumes"]
    )
    assert not (tmp_path / "secrets" / "log_agent_loki_password").exists()


def test_alloy_parses_and_every_reference_resolves(run_role_tasks, tmp_path: Path) -> None:
    config, fragment = rendered(
        run_role_tasks,
        tmp_path,
        "alloy",
        monitoring=GATEWAY,
        on_monitoring_host=True,
        variables={"log_agent_journal": True, "log_agent_extra_paths": ["/srv/app/*.log"]},
    )
    check_alloy_components(config)
    names = {f"{c.name}.{c.label}" for c in config.blocks if c.label}
    assert {
        "loki.write.default",
        "discovery.docker.containers",
        "loki.source.docker.containers",
        "loki.source.file.host_logs",
        "loki.source.file.cost_monitor",
        "loki.process.cost_monitor",
        "loki.source.journal.journal",
    } <= names
    assert alloy_labels(config) <= BOUNDED_LABELS
    assert fragment["services"]["alloy"]["command"][-1] == "/etc/alloy/config.alloy"
    assert "alloy-data:/var/lib/alloy/data" in fragment["services"]["alloy"]["volumes"]


@pytest.mark.parametrize("on_monitoring_host", [False, True])
def test_both_agents_carry_the_same_sources_and_labels(
    run_role_tasks, tmp_path: Path, on_monitoring_host: bool
) -> None:
    variables = {
        "loki_agent_password": PASSWORD,
        "log_agent_journal": True,
        "log_agent_extra_labels": {"team": "search"},
        "log_agent_extra_paths": [
            "/srv/app/*.log",
            {"path": "/opt/billing/out.log", "labels": {"job": "billing"}},
        ],
    }
    promtail, promtail_fragment = rendered(
        run_role_tasks,
        tmp_path / "p",
        "promtail",
        monitoring=GATEWAY,
        variables=variables,
        on_monitoring_host=on_monitoring_host,
    )
    alloy, alloy_fragment = rendered(
        run_role_tasks,
        tmp_path / "a",
        "alloy",
        monitoring=GATEWAY,
        variables=variables,
        on_monitoring_host=on_monitoring_host,
    )
    [write] = [c for c in alloy.blocks if c.name == "loki.write"]
    [endpoint] = write.blocks
    [client] = promtail["clients"]
    assert endpoint.attributes["url"] == client["url"]
    assert write.attributes["external_labels"] == client["external_labels"] | {
        "env": write.attributes["external_labels"]["env"]
    }
    assert bool(endpoint.blocks) == ("basic_auth" in client)
    promtail_files = sorted(
        target["labels"]["__path__"]
        for job in promtail["scrape_configs"]
        for target in job.get("static_configs", [])
    )
    alloy_files = sorted(
        target["__path__"] for c in alloy.blocks for target in c.attributes.get("path_targets", [])
    )
    assert promtail_files == alloy_files
    assert promtail_labels(promtail) == alloy_labels(alloy)

    # The same mounts, apart from each agent's own configuration and data.
    def shared(fragment, agent):
        return sorted(
            v.replace(str(tmp_path / ("p" if agent == "promtail" else "a")), "")
            for v in fragment["services"][agent]["volumes"]
            if agent not in v.split(":")[0]
        )

    assert shared(promtail_fragment, "promtail") == shared(alloy_fragment, "alloy")
    assert "/srv/app:/srv/app:ro" in alloy_fragment["services"]["alloy"]["volumes"]
    assert "/opt/billing:/opt/billing:ro" in alloy_fragment["services"]["alloy"]["volumes"]


@pytest.mark.parametrize("agent", ["promtail", "alloy"])
def test_the_agent_container_reads_only_and_holds_no_capability(
    run_role_tasks, tmp_path: Path, agent: str
) -> None:
    fragment = rendered(run_role_tasks, tmp_path, agent)[1]
    service = fragment["services"][agent]
    assert service["cap_drop"] == ["ALL"] and service["read_only"] is True
    assert "privileged" not in service and "ports" not in service
    assert service["security_opt"] == ["no-new-privileges:true"]
    assert service["deploy"]["resources"]["limits"] == {"memory": "256m", "cpus": "0.5"}
    writable = [v for v in service["volumes"] if not v.endswith(":ro")]
    assert writable == [
        f"{agent}-data:" + ("/var/lib/promtail" if agent == "promtail" else "/var/lib/alloy/data")
    ]
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in service["volumes"]
    assert "/var/log:/var/log:ro" in service["volumes"]
    assert service["healthcheck"]["test"][:3] == ["CMD", "bash", "-c"]


def test_switching_to_alloy_removes_promtails_files(run_role_tasks, tmp_path: Path) -> None:
    (tmp_path / "config" / "promtail").mkdir(parents=True)
    (tmp_path / "config" / "promtail" / "promtail.yml").write_text("server: {}\n")
    rendered(run_role_tasks, tmp_path, "alloy")
    assert not (tmp_path / "config" / "promtail").exists()
    assert (tmp_path / "config" / "alloy" / "config.alloy").exists()


def test_the_agent_the_inventory_does_not_pick_refuses_to_run(
    run_role_tasks, tmp_path: Path
) -> None:
    result = run(run_role_tasks, tmp_path, "promtail", variables={"log_agent": "alloy"})
    assert result.returncode != 0
    assert "The promtail role runs where log_agent is 'promtail'" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "variables, monitoring, message",
    [
        ({}, GATEWAY, "set loki_agent_password"),
        ({}, LOOPBACK_ONLY, "listens on its loopback address only"),
        ({"log_agent_extra_labels": {"request-id": "x"}}, None, "label names are letters"),
        ({"log_agent_extra_paths": ["relative/*.log"]}, None, "absolute globs"),
        ({"log_agent_extra_paths": ["/*/app.log"]}, None, "starts with a wildcard below '/'"),
        ({"log_agent": "fluentd"}, None, "log_agent must be one of promtail, alloy"),
        ({"log_agent_loki_url": "loki:3100"}, None, "an http(s) URL"),
    ],
)
def test_the_preflight_refuses(run_role_tasks, tmp_path: Path, variables, monitoring, message):
    result = run(run_role_tasks, tmp_path, "alloy", variables=variables, monitoring=monitoring)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout


def test_an_explicit_url_wins(run_role_tasks, tmp_path: Path) -> None:
    config = rendered(
        run_role_tasks,
        tmp_path,
        "alloy",
        variables={
            "log_agent_loki_url": "https://logs.example.internal/loki/api/v1/push",
            "loki_agent_password": PASSWORD,
        },
    )[0]
    [write] = [c for c in config.blocks if c.name == "loki.write"]
    [endpoint] = write.blocks
    assert endpoint.attributes["url"] == "https://logs.example.internal/loki/api/v1/push"
    assert endpoint.children("basic_auth")[0].attributes["password_file"] == (
        "/run/secrets/log_agent_loki_password"
    )


@pytest.mark.parametrize(
    "text",
    [
        'loki.write "default" {\n  endpoint { url = "x" }\n',
        'loki.write "default" { endpoint { url = "x" } } }',
        'loki.write "a-b" { }',
        'loki.write "default" { external_labels = { "host" = "x" ',
        'loki.write "default" { url = "x" url = "y" }',
    ],
)
def test_the_syntax_checker_refuses_broken_alloy(text: str) -> None:
    with pytest.raises(AlloySyntaxError):
        parse(text)


def test_the_component_check_refuses_a_dangling_reference() -> None:
    config = parse(
        'loki.source.file "x" {\n  targets = local.file_match.missing.targets\n'
        "  forward_to = [loki.write.default.receiver]\n}\n"
    )
    assert references(config)[0] == Reference("local.file_match.missing.targets")
    with pytest.raises(AssertionError, match="refers to no declared component"):
        check_alloy_components(config)
