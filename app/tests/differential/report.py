"""What the differential run saw, for the summary at the end of the session."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from differential.cases import Case

AGREE, MISMATCH, ACCEPTED_DEVIATION, UNPRICED, REFERENCE_ERROR = (
    "agree",
    "mismatch",
    "accepted deviation",
    "unpriced by the app",
    "LiteLLM raised",
)


@dataclass(frozen=True)
class Outcome:
    case: Case
    verdict: str
    app_cost: Decimal | None
    litellm_cost: float | None
    app_key: str | None  # the catalog entry the app priced the case's model name with
    corrected_cost: float | None = None  # an accepted deviation's reference, where one applies

    def line(self) -> str:
        app = "None" if self.app_cost is None else f"{self.app_cost:.8f}"
        reference = "error" if self.litellm_cost is None else f"{self.litellm_cost:.8f}"
        if self.corrected_cost is not None:
            reference += f", corrected reference {self.corrected_cost:.8f}"
        other = "" if self.app_key == self.case.key else f" (app priced it as {self.app_key})"
        return (
            f"{self.case.key} [{self.case.provider} {self.case.model}] {self.case.describe()}:"
            f" app {app}{other}, LiteLLM {reference}"
        )


@dataclass
class Results:
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def summary(self) -> list[str]:
        models = {outcome.case.key for outcome in self.outcomes}
        verdicts = Counter(outcome.verdict for outcome in self.outcomes)
        lines = [
            f"models covered: {len(models)}, cases: {len(self.outcomes)}, "
            + ", ".join(f"{verdict}: {count}" for verdict, count in sorted(verdicts.items()))
        ]
        elsewhere = {o.case.key: o.app_key for o in self.outcomes if o.app_key != o.case.key}
        if elsewhere:
            lines.append(
                f"models whose name the app prices with another entry: {len(elsewhere)}, e.g. "
                + ", ".join(f"{key} -> {other}" for key, other in list(elsewhere.items())[:3])
            )
        failing = Counter(
            (outcome.verdict, outcome.case.category)
            for outcome in self.outcomes
            if outcome.verdict != AGREE
        )
        for (verdict, category), count in sorted(failing.items()):
            lines.append(f"  {verdict:<20} {category:<26} {count}")
        return lines


RESULTS = Results()
