"""CPU per record of each stage of the ingest request path, in process (no database).

    python benchmarks/ingest_stages.py [--batches 200]

Times (in thread CPU time, which other load on the machine barely changes) the benchmark's
500-record batch through each step the server runs for a request:
parse and validate (records.parse_body: one step on its msgspec fast path, orjson then the
validator otherwise), price, encode (COPY text), the usage metrics, and the budgets the writer
thread adds. Best of 5 runs; prints, never fails.
Where the time goes on a live server (COPY, commit, the event loop): attach py-spy to
`cost-monitor serve` while benchmarks/app.py loads it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cost_monitor import storage
from cost_monitor.budgets import SpendTracker
from cost_monitor.metrics import LabelBounds, Metrics
from cost_monitor.pricing import PriceCatalog, price_records
from cost_monitor.records import IngestLimits, parse_body

from app import HTTP_BATCH, records


def per_record_us(step: Callable[[], object], batches: int) -> float:
    runs = []
    for _ in range(5):
        started = time.thread_time()
        for _ in range(batches):
            step()
        runs.append((time.thread_time() - started) / batches / HTTP_BATCH * 1e6)
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    body = orjson.dumps(records(HTTP_BATCH))
    limits = IngestLimits()
    catalog = PriceCatalog.load()
    projects = [f"project-{i}" for i in range(10)]
    bounds = LabelBounds(
        models=catalog.model_keys(), projects=projects, resolve_model=catalog.priced_key
    )
    metrics = Metrics(bounds)
    tracker = SpendTracker()
    batch = parse_body(body, "application/json", limits).records

    def price() -> None:
        for record in batch:
            record.cost_usd = None
        price_records(catalog, batch)

    def unprice() -> None:
        for record in batch:
            record.cost_usd = None

    figures = {
        "parse + validate": per_record_us(
            lambda: parse_body(body, "application/json", limits), args.batches
        ),
        "price": per_record_us(price, args.batches) - per_record_us(unprice, args.batches),
    }
    price_records(catalog, batch)
    figures["encode (COPY text)"] = per_record_us(lambda: storage.encode_rows(batch), args.batches)
    figures["usage metrics"] = per_record_us(lambda: metrics.record_batch(batch), args.batches)
    figures["budgets (writer thread)"] = per_record_us(lambda: tracker.add(batch), args.batches)
    total = sum(figures.values())
    for name, value in figures.items():
        print(f"{name:<26} {value:6.2f} us/record  {100 * value / total:4.0f}%")
    print(f"{'total':<26} {total:6.2f} us/record  = {1e6 / total:,.0f} records/s on one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
