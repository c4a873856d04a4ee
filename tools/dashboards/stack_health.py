"""Stack health: is the monitoring stack itself working? (Prometheus)"""

from __future__ import annotations

from tools.dashboards.grafana import (
    OK_FAILED,
    PERCENT,
    UP_DOWN,
    Grid,
    bargauge,
    dashboard,
    prometheus_variable,
    promql,
    stat,
    text,
    thresholds,
    timeseries,
)
from tools.dashboards.queries import selector

UID = "aicost-stack-health"

TARGETS = selector("up", 'job=~"$job"', 'host=~"$host"')
HOST = 'host=~"$host"'
# cAdvisor's series of the compose services' containers (their other containers have no label).
SERVICES = f'{HOST}, container_label_com_docker_compose_service!=""'
BY_SERVICE = "host, container_label_com_docker_compose_service"
SERVICE_LEGEND = "{{host}} {{container_label_com_docker_compose_service}}"
# Filesystems that are the host's disks, not memory or container layers.
DISKS = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|autofs|fuse.*"'
UP_COLOURS = thresholds((1, "green"), base="red")


def rate(metric: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}[$__rate_interval]))"


def build() -> dict:
    grid = Grid()
    grid.add(
        text(
            "How to read this dashboard",
            "What the dashboard shows.",
            """
            **The monitoring stack itself**: whether Prometheus reaches every service it
            scrapes, whether Prometheus and Alertmanager run with their current configuration
            and deliver alerts, whether the cost monitor reaches TimescaleDB, and the disks and
            memory of each host. Everything green means the cost figures are being recorded.
            """,
        ),
        24,
        3,
    )

    grid.row("Services")
    grid.add(
        stat(
            "Targets up",
            "Every service Prometheus scrapes, per host: Up when the last scrape succeeded.",
            promql(TARGETS, "{{job}} on {{host}}", instant=True),
            mappings=UP_DOWN,
            steps=UP_COLOURS,
        ),
        12,
        5,
    )
    grid.add(
        stat(
            "TimescaleDB reachable",
            "Whether the cost monitor can reach TimescaleDB (its llm_database_up gauge).",
            promql("min(llm_database_up)", "TimescaleDB", instant=True),
            mappings=UP_DOWN,
            steps=UP_COLOURS,
            no_value="Cost monitor not scraped",
        ),
        4,
        5,
    )
    grid.add(
        stat(
            "Prometheus configuration",
            "Whether the last reload of Prometheus' configuration and rules succeeded.",
            promql(
                selector("prometheus_config_last_reload_successful", HOST),
                "{{host}}",
                instant=True,
            ),
            mappings=OK_FAILED,
            steps=UP_COLOURS,
        ),
        4,
        5,
    )
    grid.add(
        stat(
            "Alertmanager configuration",
            "Whether the last reload of Alertmanager's configuration succeeded.",
            promql(
                selector("alertmanager_config_last_reload_successful", HOST),
                "{{host}}",
                instant=True,
            ),
            mappings=OK_FAILED,
            steps=UP_COLOURS,
        ),
        4,
        5,
    )
    grid.add(
        timeseries(
            "Targets down by job",
            "How many targets of each job failed their last scrape.",
            promql(f"sum by (job) (1 - {TARGETS})", "{{job}}"),
            steps=thresholds((1, "red")),
            threshold_lines=True,
            legend_calcs=("max",),
        ),
        12,
        7,
    )
    grid.add(
        timeseries(
            "Scrape duration by target",
            "How long each scrape takes. Close to the scrape timeout means scrapes may fail.",
            promql(selector("scrape_duration_seconds", 'job=~"$job"', HOST), "{{job}} on {{host}}"),
            unit="s",
        ),
        12,
        7,
    )

    grid.row("Prometheus and Alertmanager")
    grid.add(
        timeseries(
            "Samples rejected per second",
            """
            Scraped samples Prometheus dropped: out of order, duplicate timestamps, out of
            bounds, or over a sample limit. Should be 0.
            """,
            # One rate per metric: rate() over several names at once collides once it drops
            # the name (Prometheus 2.x refuses the query).
            promql(
                " + ".join(
                    rate(f"prometheus_target_scrapes_sample_{reason}_total")
                    for reason in ("out_of_order", "duplicate_timestamp", "out_of_bounds")
                ),
                "Rejected samples",
            ),
            promql(
                rate("prometheus_target_scrapes_exceeded_sample_limit_total"), "Over sample limit"
            ),
        ),
        8,
        7,
    )
    grid.add(
        timeseries(
            "Rule evaluation failures per second",
            "Alerting and recording rules that failed to evaluate, per rule group. Should be 0.",
            promql(
                rate("prometheus_rule_evaluation_failures_total", "rule_group"), "{{rule_group}}"
            ),
        ),
        8,
        7,
    )
    grid.add(
        timeseries(
            "Alert notifications failing per second",
            """
            Notifications Alertmanager could not deliver, per integration (email, Slack,
            webhook ...), and alerts Prometheus could not hand to Alertmanager. Should be 0:
            otherwise alerts are not reaching anyone.
            """,
            promql(
                rate("alertmanager_notifications_failed_total", "integration"), "{{integration}}"
            ),
            promql(rate("prometheus_notifications_errors_total"), "Prometheus to Alertmanager"),
            promql(rate("prometheus_notifications_dropped_total"), "Dropped by Prometheus"),
        ),
        8,
        7,
    )
    grid.add(
        stat(
            "Active alerts",
            "Alerts firing in Alertmanager now.",
            promql('sum(alertmanager_alerts{state="active"})', "Active", instant=True),
            steps=thresholds((1, "orange")),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Series in Prometheus",
            "Time series held in memory by Prometheus: a sudden jump means a new label value "
            "explosion.",
            promql("sum(prometheus_tsdb_head_series)", "Series", instant=True),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Alertmanagers known to Prometheus",
            "How many Alertmanagers Prometheus sends alerts to. 0 means alerts go nowhere.",
            promql(
                "min(prometheus_notifications_alertmanagers_discovered)",
                "Alertmanagers",
                instant=True,
            ),
            steps=thresholds((1, "green"), base="red"),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Prometheus storage size",
            "Disk space Prometheus' time series database uses (blocks on disk).",
            promql("sum(prometheus_tsdb_storage_blocks_bytes)", "Storage", instant=True),
            unit="bytes",
        ),
        6,
        4,
    )

    grid.row("Hosts")
    grid.add(
        bargauge(
            "Disk used per host and filesystem",
            "Share of each disk in use. Orange from 80 %, red from 90 %.",
            promql(
                f"1 - {selector('node_filesystem_avail_bytes', DISKS, HOST)}"
                f" / {selector('node_filesystem_size_bytes', DISKS, HOST)}",
                "{{host}} {{mountpoint}}",
                instant=True,
            ),
            unit=PERCENT,
            minimum=0,
            maximum=1,
            steps=thresholds((0.8, "orange"), (0.9, "red")),
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Memory used per host",
            "Share of each host's memory in use (not available to new programs).",
            promql(
                f"1 - {selector('node_memory_MemAvailable_bytes', HOST)}"
                f" / {selector('node_memory_MemTotal_bytes', HOST)}",
                "{{host}}",
            ),
            unit=PERCENT,
            minimum=0,
            maximum=1,
            steps=thresholds((0.9, "red")),
            threshold_lines=True,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "CPU busy per host",
            "Share of each host's CPU time not idle, over all cores.",
            promql(
                "1 - avg by (host) (rate(node_cpu_seconds_total"
                f'{{mode="idle", {HOST}}}[$__rate_interval]))',
                "{{host}}",
            ),
            unit=PERCENT,
            minimum=0,
            maximum=1,
        ),
        8,
        8,
    )

    grid.row("Containers (cAdvisor)")
    grid.add(
        timeseries(
            "Container memory, share of its limit",
            "Each service's working set over its memory limit (ContainerMemoryNearLimit fires "
            "above 90 %).",
            promql(
                f"container_memory_working_set_bytes{{{SERVICES}}}"
                f" / (container_spec_memory_limit_bytes{{{SERVICES}}} > 0)",
                SERVICE_LEGEND,
            ),
            unit=PERCENT,
            minimum=0,
            maximum=1,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Container CPU (cores)",
            "CPU time each service's container uses, in cores.",
            promql(
                rate(f"container_cpu_usage_seconds_total{{{SERVICES}}}", BY_SERVICE), SERVICE_LEGEND
            ),
            minimum=0,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Container OOM kills",
            "Processes the kernel killed at a container's memory limit (ContainerOOMKilled).",
            promql(
                f"sum by ({BY_SERVICE}) "
                f"(increase(container_oom_events_total{{{SERVICES}}}[$__rate_interval]))",
                SERVICE_LEGEND,
            ),
            minimum=0,
            bars=True,
        ),
        8,
        8,
    )

    return dashboard(
        uid=UID,
        title="Stack health",
        description="Targets, Prometheus, Alertmanager, TimescaleDB reachability, the hosts' "
        "disks, memory and CPU, and the containers' memory, CPU and OOM kills (Prometheus, "
        "cAdvisor).",
        grid=grid,
        variables=[
            prometheus_variable("job", "Job", "label_values(up, job)", "Scrape job (service)."),
            prometheus_variable(
                "host", "Host", 'label_values(up{job=~"$job"}, host)', "Host the service runs on."
            ),
        ],
        time_from="now-6h",
        refresh="1m",
    )
