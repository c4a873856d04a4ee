"""Check Grafana's rendered configuration against the keys Grafana 13 documents.

Grafana itself cannot run in CI (no image); this checks what the grafana role wrote:
datasource and dashboard-provider provisioning files (keys as in Grafana's "Provision
Grafana" documentation), grafana.ini (sections and keys the role sets), and the dashboards
(every datasource uid they use is provisioned).

    python tests/support/grafana_provisioning.py CONFIG_DIR     # /opt/aicost/config/grafana
"""

from __future__ import annotations

import configparser
import json
import sys
from pathlib import Path

import yaml

DATASOURCE_FILE_KEYS = {"apiVersion", "datasources", "deleteDatasources", "prune"}
DATASOURCE_KEYS = {
    "name", "type", "access", "orgId", "uid", "url", "user", "basicAuth", "basicAuthUser",
    "withCredentials", "isDefault", "jsonData", "secureJsonData", "version", "editable",
}  # fmt: skip
# Grafana 9.4+ takes the PostgreSQL database from jsonData.database; the top-level key is gone.
POSTGRES_JSON_DATA = {
    "database", "sslmode", "postgresVersion", "timescaledb", "maxOpenConns", "maxIdleConns",
    "connMaxLifetime", "maxIdleConnsAuto", "tlsAuth", "tlsAuthWithCACert", "tlsConfigurationMethod",
}  # fmt: skip
PROVIDER_FILE_KEYS = {"apiVersion", "providers"}
PROVIDER_KEYS = {
    "name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds",
    "allowUiUpdates", "options",
}  # fmt: skip
PROVIDER_OPTIONS = {"path", "foldersFromFilesStructure"}
INI_KEYS = {
    "server": {"http_port", "root_url", "domain", "protocol", "serve_from_sub_path"},
    "security": {"admin_user", "disable_gravatar", "cookie_samesite", "cookie_secure",
                 "disable_initial_admin_creation", "allow_embedding"},
    "auth.anonymous": {"enabled"},
    "users": {"allow_sign_up", "allow_org_create"},
    "analytics": {"reporting_enabled", "check_for_updates", "check_for_plugin_updates"},
    "log": {"mode", "level"},
    "dashboards": {"default_home_dashboard_path"},
    "paths": {"provisioning"},
}  # fmt: skip


def datasource_uids(node) -> set[str]:
    """Every datasource uid a dashboard (or part of one) names."""
    if isinstance(node, list):
        return set().union(*(datasource_uids(value) for value in node))
    if not isinstance(node, dict):
        return set()
    source = node.get("datasource")
    found = {source["uid"]} if isinstance(source, dict) and "uid" in source else set()
    return found.union(*(datasource_uids(value) for value in node.values()))


def problems(config_dir: Path) -> list[str]:
    found: list[str] = []

    def unknown(where: str, keys, allowed) -> None:
        extra = sorted(set(keys) - set(allowed))
        if extra:
            found.append(f"{where}: keys Grafana does not know: {extra}")

    datasources = yaml.safe_load((config_dir / "provisioning/datasources/aicost.yml").read_text())
    unknown("datasources file", datasources, DATASOURCE_FILE_KEYS)
    uids = set()
    for source in datasources.get("datasources", []):
        where = f"datasource {source.get('name')}"
        unknown(where, source, DATASOURCE_KEYS)
        for required in ("name", "type", "uid", "url", "access"):
            if not source.get(required):
                found.append(f"{where}: {required} is missing")
        uids.add(source.get("uid"))
        if source.get("type") in ("postgres", "grafana-postgresql-datasource"):
            unknown(where + " jsonData", source.get("jsonData", {}), POSTGRES_JSON_DATA)
            if not source.get("jsonData", {}).get("database"):
                found.append(f"{where}: jsonData.database is missing")
            password = source.get("secureJsonData", {}).get("password", "")
            if not password.startswith("$__file{"):
                found.append(f"{where}: the password must be read from a file ($__file{{...}})")

    providers = yaml.safe_load((config_dir / "provisioning/dashboards/aicost.yml").read_text())
    unknown("dashboard providers file", providers, PROVIDER_FILE_KEYS)
    for provider in providers.get("providers", []):
        unknown(f"provider {provider.get('name')}", provider, PROVIDER_KEYS)
        unknown(f"provider {provider.get('name')} options", provider.get("options", {}),
                PROVIDER_OPTIONS)  # fmt: skip

    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string((config_dir / "grafana.ini").read_text())
    for section in ini.sections():
        unknown(f"grafana.ini [{section}]", ini[section], INI_KEYS.get(section, ()))
    if ini.get("auth.anonymous", "enabled", fallback="false") != "false":
        found.append("grafana.ini: anonymous access must be off")

    for dashboard in sorted((config_dir / "dashboards").glob("*.json")):
        used = datasource_uids(json.loads(dashboard.read_text()))
        missing = sorted(u for u in used - uids if not u.startswith(("$", "-- ")))
        if missing:
            found.append(f"{dashboard.name}: datasource uids not provisioned: {missing}")
    return found


if __name__ == "__main__":
    issues = problems(Path(sys.argv[1]))
    print("\n".join(issues) or "Grafana configuration OK")
    sys.exit(1 if issues else 0)
