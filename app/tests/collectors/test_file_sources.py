"""Export-file collectors (Bedrock CUR 2.0, GCP billing export): directories, gzip, HTTP URLs."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cost_monitor.collectors import COLLECTORS
from cost_monitor.collectors.model import merge_buckets

from .conftest import PAYLOADS, ProviderStub, Reply

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 20, tzinfo=UTC)
CUR = PAYLOADS / "bedrock_cur_2026-11.csv"
GCP = PAYLOADS / "gcp_billing_2026-11-17.ndjson"


def totals(buckets):
    merged = merge_buckets(buckets)
    return (
        len(merged),
        sum(b.input_tokens + b.cache_read_tokens + b.cache_write_tokens for b in merged),
        sum(b.output_tokens for b in merged),
        sum(b.cost_amount for b in merged),
    )


CUR_TOTALS = (6, 590000, 11000, Decimal("0.81291"))
GCP_TOTALS = (4, 3500000, 120000, Decimal("1.065"))


def test_bedrock_cur_reads_gzipped_exports_from_nested_directories(tmp_path):
    period = tmp_path / "aicost-cur" / "data" / "BILLING_PERIOD=2026-11"
    period.mkdir(parents=True)
    with CUR.open("rb") as plain, gzip.open(period / "aicost-cur-00001.csv.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    (period / "aicost-cur-Manifest.json").write_text("{}")  # not data: pattern skips it
    collector = COLLECTORS["bedrock_cur"]({"path": str(tmp_path), "project_tag": "user_project"})
    buckets = list(collector.collect(SINCE, UNTIL))
    assert totals(buckets) == CUR_TOTALS
    assert {b.project for b in buckets} == {"search", ""}


def test_bedrock_cur_reads_plain_csv_from_an_http_url(provider: ProviderStub):
    provider.reply("GET", "/exports/cur.csv.gz", Reply(200, gzip.compress(CUR.read_bytes())))
    provider.reply("GET", "/exports/cur-plain.csv", Reply(200, CUR.read_bytes()))
    collector = COLLECTORS["bedrock_cur"](
        {"urls": [f"{provider.base_url}/exports/cur.csv.gz"], "max_attempts": 1}
    )
    assert totals(collector.collect(SINCE, UNTIL)) == CUR_TOTALS
    plain = COLLECTORS["bedrock_cur"]({"urls": [f"{provider.base_url}/exports/cur-plain.csv"]})
    assert totals(plain.collect(SINCE, UNTIL)) == CUR_TOTALS


def test_gcp_billing_reads_ndjson_files_and_urls(tmp_path, provider: ProviderStub):
    shutil.copy(GCP, tmp_path / "export-000000000000.json")
    from_dir = COLLECTORS["gcp_billing"]({"path": str(tmp_path)})
    assert totals(from_dir.collect(SINCE, UNTIL)) == GCP_TOTALS

    provider.reply("GET", "/billing/export.json.gz", Reply(200, gzip.compress(GCP.read_bytes())))
    from_url = COLLECTORS["gcp_billing"]({"urls": [f"{provider.base_url}/billing/export.json.gz"]})
    assert totals(from_url.collect(SINCE, UNTIL)) == GCP_TOTALS


def test_gcp_billing_services_are_configurable(tmp_path):
    shutil.copy(GCP, tmp_path / "export.json")
    only_gemini_api = COLLECTORS["gcp_billing"](
        {"path": str(tmp_path), "services": {"Gemini API": "gcp.gemini"}}
    )
    [bucket] = only_gemini_api.collect(SINCE, UNTIL)
    assert (bucket.provider, bucket.output_tokens) == ("gcp.gemini", 20000)


def test_file_collectors_need_a_source_and_report_a_missing_path(tmp_path):
    with pytest.raises(ValueError, match="path"):
        COLLECTORS["bedrock_cur"]({})
    missing = COLLECTORS["gcp_billing"]({"path": str(tmp_path / "nope")})
    with pytest.raises(FileNotFoundError):
        list(missing.collect(SINCE, UNTIL))
