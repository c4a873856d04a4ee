from __future__ import annotations

import pytest
from cost_monitor.config import ConfigError, load_config


def test_file_then_environment(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(
        """
listen: {port: 9000}
database: {dsn: "host=db dbname=aicost"}
metrics: {projects: [search, chat]}
budgets:
  search: {daily_usd: 50, monthly_usd: 1000}
  _all: {monthly_usd: 5000}
collectors:
  openai_usage: {interval_seconds: 600, settings: {api_key_file: /run/secrets/openai}}
"""
    )
    config = load_config(path, environ={"COST_MONITOR_LISTEN_PORT": "9100"})
    assert config.listen.port == 9100
    assert config.database.dsn == "host=db dbname=aicost"
    assert config.budgets["search"].daily_usd == 50.0
    assert config.budgets["_all"].daily_usd is None
    assert config.collectors["openai_usage"].interval_seconds == 600
    assert config.collectors["openai_usage"].settings["api_key_file"] == "/run/secrets/openai"
    assert config.metrics.projects == ["search", "chat"]


def test_defaults_without_a_file():
    config = load_config(None, environ={})
    assert config.listen.port == 8080


def test_unknown_keys_and_wrong_types_are_errors(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("listen: {prot: 1}\n")
    with pytest.raises(ConfigError, match="prot"):
        load_config(path, environ={})
    path.write_text("listen: {port: eighty}\n")
    with pytest.raises(ConfigError, match=r"listen\.port"):
        load_config(path, environ={})


def test_tokens_come_from_a_file(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("alpha\n\n beta \n")
    config = load_config(None, environ={"COST_MONITOR_AUTH_TOKENS_FILE": str(tokens)})
    assert config.auth.load_tokens() == {"alpha", "beta"}


def test_blank_and_comment_lines_of_the_tokens_file_are_not_tokens(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# issued 2026-11-01 to the search team\nalpha\n\n  # old: beta\n")
    config = load_config(None, environ={"COST_MONITOR_AUTH_TOKENS_FILE": str(tokens)})
    assert config.auth.load_tokens() == {"alpha"}


@pytest.mark.parametrize("text", ["", "\n \n\t\n", "# only a comment\n\n"])
def test_a_tokens_file_without_a_token_is_an_error_not_an_open_api(tmp_path, text):
    tokens = tmp_path / "tokens"
    tokens.write_text(text)
    config = load_config(None, environ={"COST_MONITOR_AUTH_TOKENS_FILE": str(tokens)})
    with pytest.raises(ConfigError, match=r"config\.auth\.tokens_file: .* holds no token"):
        config.auth.load_tokens()


def test_no_token_at_all_is_an_error_unless_authentication_is_disabled():
    config = load_config(None, environ={})
    with pytest.raises(ConfigError, match=r"config\.auth: no ingest token"):
        config.auth.load_tokens()
    assert config.listen.bind_host(config.auth) == "0.0.0.0"
    config.auth.disabled = True
    assert config.auth.load_tokens() == frozenset()
    # Without authentication the API listens on loopback only, unless told otherwise.
    assert config.listen.bind_host(config.auth) == "127.0.0.1"
    config.listen.host = "0.0.0.0"
    assert config.listen.bind_host(config.auth) == "0.0.0.0"


def test_authentication_disabled_and_tokens_configured_is_an_error(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("auth: {disabled: true, tokens: [alpha]}\n")
    config = load_config(path, environ={})
    with pytest.raises(ConfigError, match=r"config\.auth\.disabled"):
        config.auth.load_tokens()


def test_every_problem_is_collected_and_named_by_its_key(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(
        """
listen: {port: 0}
budgets: {search: {daily_usd: lots}}
logging: {level: LOUD}
reconciliation: {interval_seconds: -1}
"""
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert [problem.split(":")[0] for problem in raised.value.problems] == [
        "config.listen.port",
        "config.budgets.search.daily_usd",
        "config.logging.level",
        "config.reconciliation.interval_seconds",
    ]
    assert raised.value.problems[1] == (
        "config.budgets.search.daily_usd: must be a positive number, not 'lots'"
    )


def test_reconciliation_defaults():
    config = load_config(None, environ={})
    assert (config.reconciliation.enabled, config.reconciliation.interval_seconds) == (True, 900)
