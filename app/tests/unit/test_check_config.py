"""cost-monitor check-config: every problem on its own line, named by its key path."""

from __future__ import annotations

import json

import pytest
from cost_monitor.cli import main


def write(tmp_path, text, name="config.yml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def check(capsys, config, *flags):
    code = main(["--config", str(config), "check-config", *flags])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


NO_AUTH = "auth: {disabled: true}\n"


@pytest.fixture
def good_config(tmp_path):
    secret = write(tmp_path, "sk-admin\n", "openai_admin_key")
    tokens = write(tmp_path, "ingest-token\n", "tokens")
    password = write(tmp_path, "pw\n", "password")
    prices = write(
        tmp_path,
        json.dumps(
            {
                "_aicost_catalog": {"prices_taken": "2027-01-02"},
                "house-model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
                "gpt-5": {"input_cost_per_token": 1.5e-06},
            }
        ),
        "prices.json",
    )
    return write(
        tmp_path,
        f"""
listen: {{port: 9000}}
auth: {{tokens_file: {tokens}}}
database:
  dsn: "host=db.invalid dbname=aicost user=aicost_writer"
  password_file: {password}
prices:
  files: [{prices}]
  overrides:
    my-finetune: {{input_cost_per_token: 3.0e-06, output_cost_per_token: 1.2e-05}}
    gpt-5-mini: {{output_cost_per_token: 2.2e-06}}
metrics: {{projects: [search, support-bot]}}
budgets:
  search: {{daily_usd: 50, monthly_usd: 1000}}
  _all: {{monthly_usd: 5000.5}}
collectors:
  openai_usage: {{interval_seconds: 3600, settings: {{api_key_file: {secret}, bucket_width: 1h}}}}
  openai_usage_eu: {{type: openai_usage, settings: {{api_key_env: NOT_SET_HERE_OPENAI}}}}
  bedrock_cur: {{settings: {{path: /data/cur}}}}
reconciliation: {{enabled: true, interval_seconds: 600}}
logging: {{file: "-", level: debug}}
""",
    )


def test_a_good_configuration_prints_one_summary_line(capsys, good_config):
    from cost_monitor.pricing import PriceCatalog

    shipped = len(PriceCatalog.load())
    code, out, err = check(capsys, good_config, "--require-files")
    assert (code, err) == (0, [])
    # house-model and my-finetune are new entries; gpt-5 and gpt-5-mini update shipped ones.
    assert out == [f"configuration OK: 3 collectors, 2 budgets, {shipped + 2} price entries"]


def test_an_empty_configuration_needs_only_authentication(capsys, tmp_path):
    code, out, err = check(capsys, write(tmp_path, "{}\n"))
    assert (code, out) == (2, [])
    assert err == [
        "config.auth: no ingest token configured; set auth.tokens_file or auth.tokens,"
        " or auth.disabled: true to run the ingest API without authentication"
    ]
    code, out, _ = check(capsys, write(tmp_path, "auth: {disabled: true}\n"))
    assert code == 0
    assert out[0].startswith("configuration OK: 0 collectors, 0 budgets, ")


def test_authentication_disabled_with_tokens_is_a_problem(capsys, tmp_path):
    code, _, err = check(capsys, write(tmp_path, "auth: {disabled: true, tokens: [alpha]}\n"))
    assert code == 2
    assert err == [
        "config.auth.disabled: true, but tokens are configured too; remove one or the other"
    ]


def test_a_tokens_file_of_comments_holds_no_token(capsys, tmp_path):
    tokens = write(tmp_path, "# the search team's token goes here\n\n", "tokens")
    config = write(tmp_path, f"auth: {{tokens_file: {tokens}}}\n")
    assert check(capsys, config)[0] == 0  # the file is only read where secrets are mounted
    code, _, err = check(capsys, config, "--require-files")
    assert code == 2
    assert err == [
        f"config.auth.tokens_file: {tokens} holds no token (blank and # comment lines do not count)"
    ]


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "collectors: {openai_usage: {type: openai-usage}}",
            "config.collectors.openai_usage.type: unknown collector 'openai-usage' (known: "
            "anthropic_costs, anthropic_usage, azure_cost, bedrock_cur, gcp_billing, "
            "openai_costs, openai_usage)",
        ),
        ("collectors: {my_openai: {}}", "config.collectors.my_openai: unknown collector"),
        (
            "collectors: {anthropic_usage: {settings: {api_key_env: X, bucket_width: 1w}}}",
            "config.collectors.anthropic_usage.settings: bucket_width must be one of",
        ),
        (
            "collectors: {openai_costs: {settings: {api_key: sk-literal}}}",
            "config.collectors.openai_costs.settings: put api_key in a file (api_key_file)",
        ),
        (
            "collectors: {azure_cost: {settings: {token_env: AZ}}}",
            "config.collectors.azure_cost.settings: azure_cost needs scope",
        ),
        (
            "collectors: {gcp_billing: {settings: {}}}",
            "config.collectors.gcp_billing.settings: gcp_billing needs path",
        ),
        (
            "collectors: {openai_usage: {interval_seconds: 0}}",
            "config.collectors.openai_usage.interval_seconds: must be a positive whole number,"
            " not 0",
        ),
        (
            "budgets: {search: {daily_usd: lots}}",
            "config.budgets.search.daily_usd: must be a positive number, not 'lots'",
        ),
        (
            "budgets: {search: {monthly_usd: -5}}",
            "config.budgets.search.monthly_usd: must be a positive number, not -5",
        ),
        (
            "budgets: {search: {daily_usd: 0}}",
            "config.budgets.search.daily_usd: must be a positive number, not 0",
        ),
        (
            "budgets: {search: {daily_usd: true}}",
            "config.budgets.search.daily_usd: must be a positive number, not True",
        ),
        ("listen: {port: 0}", "config.listen.port: must be a port number from 1 to 65535, not 0"),
        (
            "listen: {port: 65536}",
            "config.listen.port: must be a port number from 1 to 65535, not 65536",
        ),
        (
            "listen: {port: http}",
            "config.listen.port: must be a port number from 1 to 65535, not 'http'",
        ),
        ("logging: {level: LOUD}", "config.logging.level: must be a logging level"),
        (
            "metrics: {projects: [search, 42]}",
            "config.metrics.projects: must be a list of strings, not ['search', 42]",
        ),
        ("metrics: {projects: search}", "config.metrics.projects: expected a list, not 'search'"),
        (
            "prices: {overrides: {my-model: {input_cost_per_token: -1.0e-06}}}",
            "config.prices.overrides.my-model.input_cost_per_token: must be a non-negative"
            " number (USD per token), not -1e-06",
        ),
        (
            "prices: {overrides: {my-model: {output_cost_per_token: cheap}}}",
            "config.prices.overrides.my-model.output_cost_per_token: must be a non-negative"
            " number (USD per token), not 'cheap'",
        ),
        (
            "prices: {overrides: {my-model: 3}}",
            "config.prices.overrides.my-model: must be a mapping of LiteLLM fields",
        ),
        (
            "prices: {overrides: {my-model: {max_input_tokens: 1000}}}",
            "config.prices.overrides.my-model: no input_cost_per_token or output_cost_per_token",
        ),
        (
            "reconciliation: {interval_seconds: 1.5}",
            "config.reconciliation.interval_seconds: must be a positive whole number, not 1.5",
        ),
        (
            "reconciliation: {enabled: maybe}",
            "config.reconciliation.enabled: must be true or false",
        ),
        ("database: {dsn: 'host=a = b'}", "config.database.dsn: not a libpq connection string"),
        ("listen: {prot: 1}", "config.listen.prot: unknown key (known: host, port)"),
        ("budgets: [search]", "config.budgets: expected a mapping"),
    ],
)
def test_each_problem_is_named_by_its_key(capsys, tmp_path, yaml_text, expected):
    code, out, err = check(capsys, write(tmp_path, NO_AUTH + yaml_text + "\n"))
    assert code == 2
    assert out == []
    assert len(err) == 1, err
    assert err[0].startswith(expected)


def test_every_problem_is_reported_not_just_the_first(capsys, tmp_path):
    config = write(
        tmp_path,
        NO_AUTH
        + """
listen: {port: 0}
budgets: {search: {daily_usd: lots}, chat: {monthly_usd: -1}}
collectors: {openai_usage: {type: openai-usage}}
logging: {level: LOUD}
""",
    )
    code, _, err = check(capsys, config)
    assert code == 2
    assert [line.split(":")[0] for line in err] == [
        "config.listen.port",
        "config.budgets.search.daily_usd",
        "config.budgets.chat.monthly_usd",
        "config.logging.level",
        "config.collectors.openai_usage.type",
    ]


def test_a_price_file_must_be_a_litellm_catalog(capsys, tmp_path):
    broken = write(tmp_path, "{not json", "broken.json")
    listed = write(tmp_path, "[1, 2]", "listed.json")
    odd = write(tmp_path, json.dumps({"m": 5, "_aicost_catalog": {"prices_taken": "soon"}}), "o.j")
    config = write(tmp_path, NO_AUTH + f"prices: {{files: [{broken}, {listed}, {odd}]}}\n")
    code, _, err = check(capsys, config)
    assert code == 2
    assert err[0].startswith(f"config.prices.files[0]: {broken}: not a LiteLLM price file")
    assert err[1].startswith(f"config.prices.files[1]: {listed}: not a LiteLLM price file")
    assert err[2] == f"config.prices.files[2]: {odd}: entries that are not objects: 'm'"
    assert err[3].startswith(f"config.prices.files[2]: {odd}: _aicost_catalog.prices_taken")


def test_missing_files_are_reported_only_with_require_files(capsys, tmp_path):
    missing = tmp_path / "not-mounted"
    config = write(
        tmp_path,
        f"""
auth: {{tokens_file: {missing}/tokens}}
database: {{password_file: {missing}/password}}
prices: {{files: [{missing}/prices.json]}}
collectors:
  openai_usage: {{settings: {{api_key_file: {missing}/openai}}}}
  azure_cost: {{settings: {{scope: /subscriptions/s1, token_file: {missing}/azure}}}}
""",
    )
    code, out, err = check(capsys, config)
    assert (code, err) == (0, [])
    assert out[0].startswith("configuration OK: 2 collectors, 0 budgets, ")

    code, out, err = check(capsys, config, "--require-files")
    assert code == 2
    assert out == []
    assert err == [
        f"config.auth.tokens_file: {missing}/tokens: no such file or directory",
        f"config.database.password_file: {missing}/password: no such file or directory",
        f"config.collectors.openai_usage.settings.api_key_file: {missing}/openai:"
        " no such file or directory",
        f"config.collectors.azure_cost.settings.token_file: {missing}/azure:"
        " no such file or directory",
        f"config.prices.files[0]: {missing}/prices.json: no such file or directory",
    ]


def test_require_files_reports_secret_files_that_would_not_work(capsys, tmp_path):
    tokens = write(tmp_path, "\n \n", "tokens")
    password = write(tmp_path, "", "password")
    config = write(
        tmp_path, f"auth: {{tokens_file: {tokens}}}\ndatabase: {{password_file: {password}}}\n"
    )
    assert check(capsys, config)[0] == 0
    code, _, err = check(capsys, config, "--require-files")
    assert code == 2
    assert err[0].startswith(f"config.auth.tokens_file: {tokens} holds no token")
    assert err[1] == f"config.database.password_file: {password} is empty"


def test_environment_overrides_are_checked_too(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COST_MONITOR_LISTEN_PORT", "99999")
    code, _, err = check(capsys, write(tmp_path, NO_AUTH))
    assert code == 2
    assert err == ["config.listen.port: must be a port number from 1 to 65535, not '99999'"]


def test_unreadable_or_invalid_yaml_exits_2(capsys, tmp_path):
    code, _, err = check(capsys, tmp_path / "absent.yml")
    assert code == 2
    assert err == [f"{tmp_path / 'absent.yml'}: No such file or directory"]
    code, _, err = check(capsys, write(tmp_path, "listen: [\n"))
    assert code == 2
    assert "not valid YAML" in err[0]
    code, _, err = check(capsys, write(tmp_path, "- a list\n"))
    assert code == 2
    assert err[0].endswith("the configuration must be a mapping")
