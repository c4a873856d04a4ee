from __future__ import annotations

from differential.report import RESULTS


def pytest_terminal_summary(terminalreporter):
    if RESULTS.outcomes:
        terminalreporter.section("app vs LiteLLM")
        for line in RESULTS.summary():
            terminalreporter.write_line(line)
