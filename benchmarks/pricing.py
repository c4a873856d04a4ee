#!/usr/bin/env python3
"""Pricing throughput (records/s) of the app's price_records, beside a baseline source tree.

Prices the same 100,000 validated records (a mix of the five providers' models with cache
reads and writes, reasoning, batch and service tiers; one in ten with a 1-hour cache write,
a data residency or a region where the code knows them) with the code under test and, when
--baseline names another checkout's ``app/src`` (e.g. a git worktree of the previous
release), with that code in a subprocess, interleaved rounds, best of each reported. The
records are priced in batches of --batch (500), one call each, as the server prices a request:

    .venv/bin/python benchmarks/pricing.py [--baseline /tmp/old/app/src] [--rounds 3]

It measures, it does not judge: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "app" / "src"

# Runs inside a fresh interpreter with the source tree under test first on sys.path.
MEASURE = r"""
import inspect, itertools, json, sys, time
from datetime import UTC, datetime
from cost_monitor.pricing import PriceCatalog, price_records
from cost_monitor.records import UsageRecord

MODELS = [
    ("openai", "gpt-5-mini"), ("openai", "gpt-4o-2024-05-13"), ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-opus-4-6"),
    ("aws.bedrock", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("aws.bedrock", "amazon.nova-pro-v1:0"), ("gcp.gemini", "gemini-2.5-pro"),
    ("gcp.vertex_ai", "gemini-2.5-flash"), ("azure.ai.openai", "gpt-4.1"), ("openai", "mystery"),
]
fields = set(inspect.signature(UsageRecord).parameters)  # a dataclass or a Struct
extras = [
    {"cache_write_1h_tokens": 200}, {"data_residency": "eu"}, {"region": "us-east5"},
    {"batch": True}, {"service_tier": "priority"},
]
now = datetime.now(UTC)
records = []
for i, (provider, model) in zip(range(int(sys.argv[1])), itertools.cycle(MODELS)):
    record = dict(time=now, event_id=str(i), provider=provider, model=model,
                  input_tokens=100 + i % 5000, cache_read_tokens=i % 3000,
                  cache_write_tokens=400 * (i % 2), output_tokens=50 + i % 900,
                  reasoning_tokens=i % 100)
    if i % 10 == 0:
        record.update({k: v for k, v in extras[(i // 10) % len(extras)].items() if k in fields})
    records.append(UsageRecord(**record))
catalog = PriceCatalog.load()
price_records(catalog, records[:1000])  # warm the lookups as a running app has them
for record in records:
    record.cost_usd = None
start = time.perf_counter()
batch = int(sys.argv[2])
for at in range(0, len(records), batch):
    price_records(catalog, records[at : at + batch])
elapsed = time.perf_counter() - start
print(json.dumps({"records_per_second": len(records) / elapsed, "catalog_entries": len(catalog)}))
"""


def measure(src: Path, records: int, batch: int) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(src)!r})\n" + MEASURE,
         str(records), str(batch)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout's app/src")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="records per price_records call")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = {"this tree": SRC, **({"baseline": args.baseline} if args.baseline else {})}
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, src in trees.items():
            result = measure(src, args.records, args.batch)
            if result["records_per_second"] > best.get(name, {}).get("records_per_second", 0):
                best[name] = result
    for name, result in best.items():
        print(
            f"pricing {name:<10} {result['records_per_second']:>10,.0f} records/s"
            f"  ({result['catalog_entries']} catalog entries)"
        )
    if "baseline" in best:
        ratio = best["this tree"]["records_per_second"] / best["baseline"]["records_per_second"]
        print(f"ratio this tree / baseline: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
