"""The app prices every model of its shipped catalog as LiteLLM's own cost functions do.

Run with `make differential` (LiteLLM lives in .venv-litellm, pinned to the version the
catalog was taken from). For each model, differential.cases generates token mixes and
options; the app's PriceCatalog.price and litellm.cost_per_token (after the token-convention
conversion in differential.litellm_reference) must agree within 0.01 %. Where LiteLLM is
wrong by the provider's published pricing, an ACCEPTED deviation says why and gives the
corrected reference the app must match instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import litellm
import pytest
from cost_monitor.pricing import CATALOG_MARKER, PriceCatalog, builtin_entries
from differential.cases import (
    OTEL_PROVIDERS,
    Case,
    TokenMix,
    cases_for,
    model_as_sent,
    otel_provider,
)
from differential.litellm_reference import litellm_cost
from differential.report import (
    ACCEPTED_DEVIATION,
    AGREE,
    MISMATCH,
    REFERENCE_ERROR,
    RESULTS,
    UNPRICED,
    Outcome,
)

RELATIVE_TOLERANCE = Decimal("0.0001")  # 0.01 %
ABSOLUTE_FLOOR = Decimal("1e-12")  # USD: two zero costs agree


@dataclass(frozen=True)
class AcceptedDeviation:
    category: str  # the Case.category it concerns
    applies: Callable[[Case], bool]
    corrected_reference: Callable[[Case], float]  # what the app must charge instead
    reason: str  # where LiteLLM departs from the provider's published pricing


def lacks_long_context_batch_rates(case: Case) -> bool:
    return not any(re.search(r"_above_\d+k_tokens_batches$", name) for name in case.entry)


BASE_WRITE_BATCH_RATE = "cache_creation_input_token_cost_batches"
LIFETIME_BATCH_RATES = {
    "cache_write_1h_tokens": "cache_creation_input_token_cost_above_1hr_batches",
    "cache_write_12h_tokens": "cache_creation_input_token_cost_above_12hr_batches",
}


def writes_without_a_batch_rate(case: Case) -> dict[str, int]:
    """The case's cache writes, by lifetime column, whose lifetime has no batch rate."""
    counts = case.tokens.counts()
    unrated = {
        column: counts[column]
        for column, rate in LIFETIME_BATCH_RATES.items()
        if counts[column] and rate not in case.entry
    }
    base = counts["cache_write_tokens"] - sum(counts[column] for column in LIFETIME_BATCH_RATES)
    if base and BASE_WRITE_BATCH_RATE not in case.entry:
        unrated["cache_write_tokens"] = base
    return unrated


def lacks_a_batch_rate_for_its_cache_writes(case: Case) -> bool:
    return bool(writes_without_a_batch_rate(case))


def writes_at_half_their_standard_rate(case: Case) -> float:
    """LiteLLM's batch cost, but the writes without a batch rate of their lifetime at half
    LiteLLM's standard cost of them."""
    unrated = writes_without_a_batch_rate(case)
    moved = sum(unrated.values())
    lifetimes = {column: unrated.get(column, 0) for column in LIFETIME_BATCH_RATES}
    rest = replace(
        case.tokens,
        cache_write_tokens=case.tokens.cache_write_tokens - moved,
        **{column: getattr(case.tokens, column) - n for column, n in lifetimes.items()},
    )
    writes = TokenMix(cache_write_tokens=moved, **lifetimes)
    return (
        litellm_cost(replace(case, tokens=rest))
        + litellm_cost(replace(case, batch=False, tokens=writes)) / 2
    )


def priced_by_the_exact_entry_at_priority(case: Case) -> float:
    tokens = case.tokens
    return (
        tokens.input_tokens * case.entry["input_cost_per_token_priority"]
        + tokens.output_tokens * case.entry["output_cost_per_token_priority"]
    )


def resolves_to_a_bedrock_entry_without_priority_rates(case: Case) -> bool:
    other = litellm.model_cost.get("bedrock/" + case.key, {})
    return case.key == case.model and "input_cost_per_token_priority" not in other


def litellm_answers_nothing_for_batch(case: Case) -> bool:
    return litellm_cost(case) == 0 and litellm_cost(replace(case, batch=False)) > 0


ACCEPTED: tuple[AcceptedDeviation, ...] = (
    AcceptedDeviation(
        category="long_context_above_batch",
        applies=lacks_long_context_batch_rates,
        corrected_reference=lambda case: litellm_cost(replace(case, batch=False)) / 2,
        reason=(
            "Above a long-context threshold, an entry without _above_Nk_tokens_batches rates"
            " is batch-priced by LiteLLM at its flat _batches rate or half its base rate,"
            " dropping the long-context premium. The providers publish the batch discount as"
            " 50 % of the on-demand price that applies to the request, and above the"
            " threshold that is the long-context price: the app bills the long-context rate"
            " at the entry's batch discount."
        ),
    ),
    AcceptedDeviation(
        category="batch_cache_write",
        applies=lacks_a_batch_rate_for_its_cache_writes,
        corrected_reference=writes_at_half_their_standard_rate,
        reason=(
            "Batch cache writes of a lifetime the entry has no _batches rate for are billed"
            " by LiteLLM at the batch input rate (entries with input_cost_per_token_batches)"
            " or at half the base-lifetime write rate (entries without), dropping the write"
            " premium (1.25x input for 5 minutes, 2x for 1 hour, OpenAI's 12-hour rate)."
            " The providers publish the batch discount as 50 % of every standard rate, and"
            " Anthropic's prompt-caching multipliers stack with the Batch API discount."
        ),
    ),
    AcceptedDeviation(
        category="service_tier_priority",
        applies=resolves_to_a_bedrock_entry_without_priority_rates,
        corrected_reference=priced_by_the_exact_entry_at_priority,
        reason=(
            "For a bare Bedrock id LiteLLM looks up the bedrock/ entry first; for"
            " moonshotai.kimi-k2.5 that entry has no priority rates, while the exact entry"
            " (bedrock_converse) has the priority rates Bedrock publishes. The exact entry wins."
        ),
    ),
    AcceptedDeviation(
        category="batch",
        applies=litellm_answers_nothing_for_batch,
        corrected_reference=lambda case: litellm_cost(replace(case, batch=False)) / 2,
        reason=(
            "LiteLLM answers $0 for batch usage of a model whose batch entry it cannot"
            " resolve (azure/mistral-large-latest); $0 is never a price. The app bills the"
            " providers' batch discount, half the standard rate."
        ),
    ),
)

CATALOG = PriceCatalog.load()
MODEL_KEYS = CATALOG.model_keys()


def app_cost(case: Case) -> Decimal | None:
    return CATALOG.price(
        case.model,
        case.provider,
        batch=case.batch,
        service_tier=case.service_tier,
        data_residency=case.data_residency,
        region=case.region,
        **case.tokens.counts(),
    )


def agrees(app: Decimal, reference: float) -> bool:
    expected = Decimal(repr(reference))
    scale = max(abs(app), abs(expected))
    return abs(app - expected) <= max(scale * RELATIVE_TOLERANCE, ABSOLUTE_FLOOR)


def accepted_deviation(case: Case) -> AcceptedDeviation | None:
    return next((d for d in ACCEPTED if d.category == case.category and d.applies(case)), None)


def judge(case: Case) -> Outcome:
    app = app_cost(case)
    app_key = CATALOG.priced_key(case.model, case.provider)
    try:
        reference = litellm_cost(case)
    except Exception:  # LiteLLM failing on a model of its own map is a finding
        return Outcome(case, REFERENCE_ERROR, app, None, app_key)
    if app is None:
        return Outcome(case, UNPRICED, app, reference, app_key)
    if agrees(app, reference):
        return Outcome(case, AGREE, app, reference, app_key)
    deviation = accepted_deviation(case)
    if deviation is not None:
        corrected = deviation.corrected_reference(case)
        verdict = ACCEPTED_DEVIATION if agrees(app, corrected) else MISMATCH
        return Outcome(case, verdict, app, reference, app_key, corrected)
    return Outcome(case, MISMATCH, app, reference, app_key)


def test_every_shipped_model_is_tested():
    assert len(MODEL_KEYS) == builtin_entries()[CATALOG_MARKER]["models"]


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_app_prices_agree_with_litellm(key):
    outcomes = [judge(case) for case in cases_for(key, CATALOG.entry(key))]
    for outcome in outcomes:
        RESULTS.add(outcome)
    wrong = [o.line() for o in outcomes if o.verdict not in (AGREE, ACCEPTED_DEVIATION)]
    assert not wrong, "\n".join(wrong)


def test_every_accepted_deviation_has_a_reason_and_a_case():
    categories = {
        case.category for key in MODEL_KEYS for case in cases_for(key, CATALOG.entry(key))
    }
    for deviation in ACCEPTED:
        assert deviation.reason
        assert deviation.category in categories


def current_models_of_the_five_providers() -> dict[str, dict]:
    """LiteLLM's own map: the current per-token models of the five providers, every mode the
    app prices (the catalog's date decides what is current)."""
    taken = date.fromisoformat(builtin_entries()[CATALOG_MARKER]["prices_taken"])
    return {
        key: entry
        for key, entry in litellm.model_cost.items()
        if isinstance(entry, dict)
        and "*" not in key
        and (entry.get("litellm_provider") in OTEL_PROVIDERS
             or str(entry.get("litellm_provider")).startswith("vertex_ai"))
        and entry.get("mode") in ("chat", "responses", "completion", "embedding")
        and (entry.get("input_cost_per_token") is not None
             or entry.get("output_cost_per_token") is not None)
        and ("deprecation_date" not in entry
             or date.fromisoformat(entry["deprecation_date"]) > taken)
    }  # fmt: skip


def test_every_current_model_of_the_five_providers_is_priced_by_default():
    current = current_models_of_the_five_providers()
    unpriced = [
        key
        for key, entry in current.items()
        if CATALOG.priced_key(
            model_as_sent(key, otel_provider(entry["litellm_provider"])),
            otel_provider(entry["litellm_provider"]),
        )
        is None
    ]
    assert len(current) >= 1000 and not unpriced, unpriced
