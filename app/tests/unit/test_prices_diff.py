"""cost-monitor prices diff: the catalog in use against a newer LiteLLM price file."""

from __future__ import annotations

import json

import pytest
from cost_monitor.cli import main


def entry(provider, input_cost, output_cost, mode="chat", **more):
    return {
        "litellm_provider": provider,
        "mode": mode,
        "input_cost_per_token": input_cost,
        "output_cost_per_token": output_cost,
        **more,
    }


CURRENT = {
    "_aicost_catalog": {"prices_taken": "2026-11-28"},
    "gpt-5": entry("openai", 1.25e-06, 1e-05, cache_read_input_token_cost=1.25e-07),
    "gpt-4o": entry("openai", 2.5e-06, 1e-05),
    "claude-sonnet-4-5": entry(
        "anthropic",
        3e-06,
        1.5e-05,
        cache_read_input_token_cost=3e-07,
        cache_creation_input_token_cost=3.75e-06,
    ),
    "text-embedding-3-small": entry("openai", 2e-08, 0.0, mode="embedding"),
}
NEWER = {
    "sample_spec": {"input_cost_per_token": 0.0, "litellm_provider": "one of ..."},
    # changed: input rate up, batch rate added
    "gpt-5": entry(
        "openai",
        1.5e-06,
        1e-05,
        cache_read_input_token_cost=1.25e-07,
        input_cost_per_token_batches=7.5e-07,
    ),
    # changed only in a rate outside the four shown
    "claude-sonnet-4-5": entry(
        "anthropic",
        3e-06,
        1.5e-05,
        cache_read_input_token_cost=3e-07,
        cache_creation_input_token_cost=3.75e-06,
        input_cost_per_token_above_200k_tokens=6e-06,
    ),
    # unchanged, written differently (an int zero is the same price as 0.0)
    "text-embedding-3-small": entry("openai", 2e-08, 0, mode="embedding", max_input_tokens=8191),
    # new, in scope
    "gpt-6": entry("openai", 2e-06, 1.6e-05, cache_read_input_token_cost=2e-07),
    "claude-opus-5": entry("anthropic", 5e-06, 2.5e-05, mode="completion"),
    # new, out of scope: another provider, a mode not priced per token, no token price
    "mistral/mistral-large": entry("mistral", 2e-06, 6e-06),
    "gpt-image-2": entry("openai", 5e-06, 4e-05, mode="image_generation"),
    "gpt-realtime": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_second": 1},
}


@pytest.fixture
def config(tmp_path):
    catalog = tmp_path / "current.json"
    catalog.write_text(json.dumps(CURRENT))
    path = tmp_path / "config.yml"
    path.write_text(f"prices: {{include_builtin: false, files: [{catalog}]}}\n")
    return path


@pytest.fixture
def newer(tmp_path):
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(json.dumps(NEWER))
    return path


def diff(capsys, config, *args):
    code = main(["--config", str(config), "prices", "diff", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_lists_new_removed_and_changed_models_per_1m_tokens(capsys, config, newer):
    code, out, err = diff(capsys, config, newer, "--format", "json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["unit"] == "USD per 1M tokens"
    assert (report["catalog_entries"], report["file_entries"]) == (4, 8)
    assert report["new"] == [
        {
            "model": "claude-opus-5",
            "provider": "anthropic",
            "mode": "completion",
            "old": None,
            "new": {"input": 5.0, "output": 25.0, "cache_read": None, "cache_write": None},
            "changed_fields": [],
        },
        {
            "model": "gpt-6",
            "provider": "openai",
            "mode": "chat",
            "old": None,
            "new": {"input": 2.0, "output": 16.0, "cache_read": 0.2, "cache_write": None},
            "changed_fields": [],
        },
    ]
    assert report["removed"] == [
        {
            "model": "gpt-4o",
            "provider": "openai",
            "mode": "chat",
            "old": {"input": 2.5, "output": 10.0, "cache_read": None, "cache_write": None},
            "new": None,
            "changed_fields": [],
        }
    ]
    changed = {item["model"]: item for item in report["changed"]}
    assert list(changed) == ["claude-sonnet-4-5", "gpt-5"]
    assert changed["gpt-5"]["old"] == {
        "input": 1.25,
        "output": 10.0,
        "cache_read": 0.125,
        "cache_write": None,
    }
    assert changed["gpt-5"]["new"]["input"] == 1.5
    assert changed["gpt-5"]["changed_fields"] == [
        "input_cost_per_token",
        "input_cost_per_token_batches",
    ]
    sonnet = changed["claude-sonnet-4-5"]
    assert (
        sonnet["old"]
        == sonnet["new"]
        == {
            "input": 3.0,
            "output": 15.0,
            "cache_read": 0.3,
            "cache_write": 3.75,
        }
    )
    assert sonnet["changed_fields"] == ["input_cost_per_token_above_200k_tokens"]


def test_table_is_readable_in_a_terminal(capsys, config, newer):
    code, out, _ = diff(capsys, config, newer)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("2 new, 1 removed, 2 changed")
    assert "USD per 1M tokens" in lines[0]
    sections = [line for line in lines if line.endswith("models")]
    assert sections == ["New models", "Removed models", "Changed models"]
    gpt6 = next(line for line in lines if line.startswith("gpt-6 "))
    assert gpt6.split() == ["gpt-6", "openai", "chat", "2.00", "16.00", "0.20", "-"]
    gpt5 = next(line for line in lines if line.startswith("gpt-5 "))
    assert gpt5.split() == [
        "gpt-5",
        "openai",
        "1.25",
        "->",
        "1.50",
        "10.00",
        "0.125",
        "-",
        "input_cost_per_token_batches",
    ]
    assert not any("mistral" in line or "gpt-image" in line for line in lines)
    assert not any(line.startswith("text-embedding") for line in lines)


def test_no_differences_is_still_success(capsys, config, tmp_path):
    same = tmp_path / "same.json"
    same.write_text(json.dumps(CURRENT))
    code, out, _ = diff(capsys, config, same, "--format", "json")
    assert code == 0
    assert {key: json.loads(out)[key] for key in ("new", "removed", "changed")} == {
        "new": [],
        "removed": [],
        "changed": [],
    }
    code, out, _ = diff(capsys, config, same)
    assert (code, out.splitlines()[0][:30]) == (0, "0 new, 0 removed, 0 changed (c")


def test_overrides_are_part_of_the_catalog_in_use(capsys, tmp_path, newer):
    catalog = tmp_path / "current.json"
    catalog.write_text(json.dumps(CURRENT))
    config = tmp_path / "config.yml"
    config.write_text(
        f"prices:\n  include_builtin: false\n  files: [{catalog}]\n"
        "  overrides: {text-embedding-3-small: {input_cost_per_token: 1.0e-08}}\n"
    )
    code, out, _ = diff(capsys, config, newer, "--format", "json")
    changed = {item["model"]: item for item in json.loads(out)["changed"]}
    assert code == 0
    assert changed["text-embedding-3-small"]["old"]["input"] == 0.01
    assert changed["text-embedding-3-small"]["new"]["input"] == 0.02


@pytest.mark.parametrize(
    "content", [None, "{not json", "[]", '"a string"'], ids=["missing", "bad", "list", "str"]
)
def test_a_file_that_cannot_be_read_exits_2(capsys, config, tmp_path, content):
    path = tmp_path / "upstream.json"
    if content is not None:
        path.write_text(content)
    code, out, err = diff(capsys, config, path)
    assert code == 2
    assert out == ""
    assert err.startswith(f"cost-monitor: prices diff: {path}: ")


def test_the_shipped_catalog_against_itself_has_no_differences(capsys, tmp_path):
    from importlib import resources

    shipped = tmp_path / "shipped.json"
    shipped.write_bytes(
        resources.files("cost_monitor.prices").joinpath("catalog.json").read_bytes()
    )
    empty = tmp_path / "config.yml"
    empty.write_text("{}\n")
    code, out, _ = diff(capsys, empty, shipped, "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert report["catalog_entries"] == report["file_entries"] > 100
    assert report["new"] == report["removed"] == report["changed"] == []


def test_diff_needs_exactly_one_file(capsys, config):
    assert main(["--config", str(config), "prices", "diff"]) == 2
    assert "usage" in capsys.readouterr().err
