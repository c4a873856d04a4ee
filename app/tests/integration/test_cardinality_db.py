from __future__ import annotations

import random
import string

import orjson
import requests
from app_helpers import running_app
from conftest import app_config
from cost_monitor.pricing import PriceCatalog
from cost_monitor.records import KNOWN_PROVIDERS, STATUSES

SERIES_CAP = 2000


def test_fifty_thousand_random_records_stay_under_the_series_cap(database, conn, tmp_path):
    """The whole path: validation, pricing, storage, metrics, /metrics, on junk label values."""
    config = app_config(database, tmp_path)
    config.metrics.projects = ["search"]
    config.metrics.max_series = SERIES_CAP
    rng = random.Random(50)
    catalog = PriceCatalog.load().model_keys()

    def junk(prefix: str) -> str:
        return prefix + "".join(rng.choices(string.ascii_lowercase, k=6))

    def body(count: int) -> bytes:
        return orjson.dumps(
            [
                {
                    "provider": rng.choice(sorted(KNOWN_PROVIDERS)),
                    "model": rng.choice(catalog) if rng.random() < 0.5 else junk("m-"),
                    "operation": rng.choice(["chat", "embeddings", junk("op-")]),
                    "project": rng.choice(["search", junk("p-")]),
                    "source": rng.choice(["api", "sdk", junk("s-")]),
                    "status": rng.choice(sorted(STATUSES)),
                    "input_tokens": rng.randrange(1, 1000),
                    "output_tokens": rng.randrange(1, 100),
                    "duration_seconds": rng.random() * 5,
                }
                for _ in range(count)
            ]
        )

    with running_app(config) as app:
        for _ in range(100):
            response = requests.post(app.url + "/v1/ingest", data=body(500), timeout=30)
            answer = response.json()
            assert (answer["accepted"], answer["stored"]) == (500, "database")
        text = requests.get(app.url + "/metrics", timeout=10).text
    names = tuple(family.name for family in app.runtime.sink.metrics.usage_series)
    series = sum(1 for line in text.splitlines() if line.startswith(names))
    folded = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("llm_metric_folded_records_total")
    )
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM llm_consumption")
        (stored,) = cursor.fetchone()
    print(f"usage series after 50,000 random records through the API: {series} (cap {SERIES_CAP})")
    assert stored == 50_000
    assert SERIES_CAP // 2 < series <= SERIES_CAP  # filled up to the cap, never past it
    assert folded > 0
