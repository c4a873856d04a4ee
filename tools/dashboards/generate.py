"""Write the dashboards as roles/grafana/files/dashboards/<uid>.json, or check they are current.

.venv/bin/python -m tools.dashboards            # (re)write the JSON files
.venv/bin/python -m tools.dashboards --check    # exit 1 if a file differs or is missing
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from tools.dashboards import collectors, customers, estimate_vs_bill, overview, stack_health

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "roles" / "grafana" / "files" / "dashboards"
BUILDERS: tuple[Callable[[], dict], ...] = (
    overview.build,
    customers.build,
    estimate_vs_bill.build,
    collectors.build,
    stack_health.build,
)


def dashboards() -> dict[str, dict]:
    """Every dashboard by uid, in the order above."""
    built = [build() for build in BUILDERS]
    by_uid = {item["uid"]: item for item in built}
    if len(by_uid) != len(built):
        raise ValueError("two dashboards share a uid")
    return by_uid


def render(item: dict) -> str:
    """Stable text: sorted keys, 2-space indent, a trailing newline."""
    return json.dumps(item, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name -> content, for every dashboard."""
    return {f"{uid}.json": render(item) for uid, item in dashboards().items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="directory (default: %(default)s)"
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    options = parser.parse_args(argv)

    wanted = rendered()
    present = {path.name for path in options.output.glob("*.json")}
    if options.check:
        stale = sorted(
            name
            for name, content in wanted.items()
            if not (options.output / name).is_file()
            or (options.output / name).read_text(encoding="utf-8") != content
        )
        extra = sorted(present - set(wanted))
        for name in stale:
            print(f"out of date: {options.output / name}", file=sys.stderr)
        for name in extra:
            print(f"not generated: {options.output / name}", file=sys.stderr)
        if stale or extra:
            print("run: .venv/bin/python -m tools.dashboards", file=sys.stderr)
            return 1
        return 0

    options.output.mkdir(parents=True, exist_ok=True)
    for name, content in wanted.items():
        path = options.output / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path}")
    for name in sorted(present - set(wanted)):
        print(f"not generated here, left alone: {options.output / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
