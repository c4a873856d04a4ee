from __future__ import annotations

import json
from decimal import Decimal

from cost_monitor.cli import main


def test_prices_quote_prints_the_cost_and_the_entry_used(capsys):
    code = main(
        [
            "prices",
            "--quote",
            "gpt-5-mini-2025-08-07",
            "--provider",
            "openai",
            "--input-tokens",
            "1000000",
            "--output-tokens",
            "1000000",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    cost, unit, entry = out.split()
    assert (Decimal(cost), unit, entry) == (Decimal("2.25"), "USD", "(gpt-5-mini-2025-08-07)")


def test_prices_quote_of_an_unknown_model_fails(capsys):
    assert main(["prices", "--quote", "no-such-model"]) == 1
    assert "no price" in capsys.readouterr().err


def test_prices_quote_says_which_entry_an_unpriced_variant_resembles(capsys):
    # gpt-4o's snapshots are priced differently ($5 and $2.50 input): a new one is not guessed.
    assert main(["prices", "--quote", "gpt-4o-2099-01-01", "--input-tokens", "10"]) == 1
    err = capsys.readouterr().err
    assert "no price" in err and "variant of gpt-4o" in err


def test_prices_quote_takes_lifetimes_residency_and_region(capsys):
    base = ["prices", "--quote", "claude-opus-5", "--provider", "anthropic"]
    tokens = ["--cache-write-tokens", "1000000", "--cache-write-1h-tokens", "1000000"]
    assert main([*base, *tokens]) == 0
    one_hour = Decimal(capsys.readouterr().out.split()[0])
    assert main([*base, *tokens, "--data-residency", "us"]) == 0
    assert Decimal(capsys.readouterr().out.split()[0]) == one_hour * Decimal("1.1")


def test_prices_list_filters_and_reads_extra_files(tmp_path, capsys):
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"zz-house-model": {"input_cost_per_token": 2e-06}}))
    assert main(["prices", "--file", str(extra), "zz-house"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["zz-house-model", "2.0000"]
    assert len(lines) == 2


def test_bad_configuration_exits_2(tmp_path, capsys):
    config = tmp_path / "config.yml"
    config.write_text("nonsense: 1\n")
    assert main(["--config", str(config), "prices"]) == 2
    assert "nonsense" in capsys.readouterr().err
